package batterylevel_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/batterylevel"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, batterylevel.Type(), "testdata/cases.json")
}
