package temperature_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/temperature"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, temperature.Type(), "testdata/cases.json")
}
