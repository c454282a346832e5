package sensorhub_test

import (
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/sensorhub"
)

func TestSensorTypeAggregation(t *testing.T) {
	t.Parallel()
	for _, ok := range []sensorhub.SensorType{
		{Name: "soil_ph", Unit: "pH"},
		{Name: "rain", Unit: "mm", Aggregation: sensorhub.AggregateAmount},
		{Name: "wind_direction", Unit: "deg", Aggregation: sensorhub.AggregateVector, WeightedBy: "wind_speed"},
		{Name: "current_direction", Unit: "deg", Aggregation: sensorhub.AggregateVector},
		{Name: "battery", Unit: "V", Aggregation: sensorhub.AggregateLast},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%s: %v", ok.Name, err)
		}
	}
	for _, c := range []struct {
		t    sensorhub.SensorType
		want string
	}{
		{sensorhub.SensorType{Name: "x", Unit: "1", Aggregation: "median"}, `unknown aggregation "median"`},
		{sensorhub.SensorType{Name: "x", Unit: "1", WeightedBy: "wind_speed"}, "WeightedBy is for aggregation"},
		{sensorhub.SensorType{Name: "x", Unit: "1", Aggregation: sensorhub.AggregateVector, WeightedBy: "Wind Speed"}, `WeightedBy "Wind Speed"`},
	} {
		if err := c.t.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Validate() = %v, want %q", c.t, err, c.want)
		}
	}
}
