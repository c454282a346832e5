package humidity_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/humidity"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, humidity.Type(), "testdata/cases.json")
}
