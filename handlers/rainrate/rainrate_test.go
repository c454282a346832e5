package rainrate_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/rainrate"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, rainrate.Type(), "testdata/cases.json")
}
