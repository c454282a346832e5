package windspeed_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/windspeed"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, windspeed.Type(), "testdata/cases.json")
}
