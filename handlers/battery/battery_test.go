package battery_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/battery"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, battery.Type(), "testdata/cases.json")
}
