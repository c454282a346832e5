package windgust_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/windgust"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, windgust.Type(), "testdata/cases.json")
}
