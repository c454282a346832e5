package absolutehumidity_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/absolutehumidity"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, absolutehumidity.Type(), "testdata/cases.json")
}
