// Package dewpoint defines the built-in sensor type for the dew point of the air, stored in degrees Celsius:
// sensorhub computes it from a station's temperature and humidity (package sinks/postgres/derived); a station may also send its own, which replaces the computed value.
// Give it to a hub with
//
//	sensorhub.New(cfg, dewpoint.Type())
//
// or every built-in type at once with handlers.Builtin.
package dewpoint

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "dew_point"

// Type returns the dew_point sensor type. Values are stored in Cel; other
// units are converted first (units.ToCelsius). Valid values lie in [-100, 100].
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:  Name,
		Unit:  units.Celsius,
		Units: maps.Clone(units.ToCelsius),
		Min:   -100,
		Max:   100,
	}
}
