package winddirection_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/winddirection"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, winddirection.Type(), "testdata/cases.json")
}
