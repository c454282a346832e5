package sealevelpressure_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/sealevelpressure"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, sealevelpressure.Type(), "testdata/cases.json")
}
