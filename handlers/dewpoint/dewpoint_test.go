package dewpoint_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/dewpoint"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, dewpoint.Type(), "testdata/cases.json")
}
