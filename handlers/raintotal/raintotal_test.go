package raintotal_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/raintotal"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, raintotal.Type(), "testdata/cases.json")
}
