// Package rainrate defines the built-in sensor type for the rain rate (intensity), stored in millimetres per hour:
// sensorhub computes it from a station's rain amounts over a window (package sinks/postgres/derived); a station may also send its own, which replaces the computed value. The one-minute record, 38 mm, is 2280 mm/h.
// Give it to a hub with
//
//	sensorhub.New(cfg, rainrate.Type())
//
// or every built-in type at once with handlers.Builtin.
package rainrate

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "rain_rate"

// Type returns the rain_rate sensor type. Values are stored in mm/h; other
// units are converted first (units.ToMillimetrePerHour). Valid values lie in [0, 3000].
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:  Name,
		Unit:  units.MillimetrePerHour,
		Units: maps.Clone(units.ToMillimetrePerHour),
		Min:   0,
		Max:   3000,
	}
}
