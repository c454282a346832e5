// Package windspeed defines the built-in sensor type for the mean wind
// speed, stored in metres per second. Gusts have their own type, in package
// windgust, with the same units and range. Give it to a hub with
//
//	sensorhub.New(cfg, windspeed.Type())
//
// or every built-in type at once with handlers.Builtin.
package windspeed

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "wind_speed"

// Type returns the wind speed sensor type. Values are stored in metres per
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
