package solarradiation_test

import (
	"testing"

	"github.com/sensorhub/sensorhub/handlers/internal/casetest"
	"github.com/sensorhub/sensorhub/handlers/solarradiation"
)

func TestType(t *testing.T) {
	t.Parallel()
	casetest.Run(t, solarradiation.Type(), "testdata/cases.json")
}
