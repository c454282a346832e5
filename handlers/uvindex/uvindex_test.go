package uvindex_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/uvindex"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, uvindex.Type(), "testdata/cases.json")
}
