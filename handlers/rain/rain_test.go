package rain_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/rain"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, rain.Type(), "testdata/cases.json")
}
