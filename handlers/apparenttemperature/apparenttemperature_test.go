package apparenttemperature_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/apparenttemperature"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, apparenttemperature.Type(), "testdata/cases.json")
}
