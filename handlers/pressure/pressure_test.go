package pressure_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/pressure"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, pressure.Type(), "testdata/cases.json")
}
