package heatindex_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/heatindex"
	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, heatindex.Type(), "testdata/cases.json")
}
