// Package windgust defines the built-in sensor type for wind gusts, the
// peak wind speed within a reporting interval, stored in metres per second.
// It accepts the same units and range as package windspeed. Register it on a
// hub with
//
//	sensorhub.New(cfg, windgust.Type())
//
// or every built-in type at once with handlers.Builtin.
package windgust

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "wind_gust"

// Type returns the wind gust sensor type. Values are stored in metres per
// second (m/s); readings in km/h, mph, kn or kt are converted first
// (units.ToMetrePerSecond). Valid values lie in [0, 120] m/s, above the
// fastest gust an anemometer has recorded (113 m/s, Barrow Island, 1996).
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.MetrePerSecond,
		Units:       maps.Clone(units.ToMetrePerSecond),
		Min:         0,
		Max:         120,
		Aggregation: sensorhub.AggregateInstant,
	}
}
