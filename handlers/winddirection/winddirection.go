// Package winddirection defines the built-in sensor type for the direction
// the wind blows from, stored in degrees clockwise from north. Register it
// on a hub with
//
//	sensorhub.New(cfg, winddirection.Type())
//
// or every built-in type at once with handlers.Builtin.
package winddirection

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "wind_direction"

// Type returns the wind direction sensor type. Values are stored in degrees
// (deg); readings in rad or ° are converted first (units.ToDegree). Valid
// values lie in [0, 360]. Both ends mean north and both are stored as sent,
// not normalised, because stations following the WMO convention report
// north as 360 and calm as 0. Each call returns a new value: changing its
// Units map affects no other caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Degree,
		Units:       maps.Clone(units.ToDegree),
		Min:         0,
		Max:         360,
		Aggregation: sensorhub.AggregateVector,
		WeightedBy:  "wind_speed", // package windspeed's Name
	}
}
