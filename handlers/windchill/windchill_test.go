package windchill_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/windchill"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, windchill.Type(), "testdata/cases.json")
}
