package illuminance_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/illuminance"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, illuminance.Type(), "testdata/cases.json")
}
