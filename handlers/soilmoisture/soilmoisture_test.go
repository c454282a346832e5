package soilmoisture_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/soilmoisture"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, soilmoisture.Type(), "testdata/cases.json")
}
