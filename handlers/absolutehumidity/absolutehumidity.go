// Package absolutehumidity defines the built-in sensor type for the absolute humidity of the air, the mass of water vapour per volume, stored in grams per cubic metre:
// sensorhub computes it from a station's temperature and humidity (package sinks/postgres/derived); a station may also send its own, which replaces the computed value. Saturated air at 100 °C holds 598 g/m³.
// Give it to a hub with
//
//	sensorhub.New(cfg, absolutehumidity.Type())
//
// or every built-in type at once with handlers.Builtin.
package absolutehumidity

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "absolute_humidity"

// Type returns the absolute_humidity sensor type. Values are stored in g/m3; other
// units are converted first (units.ToGramPerCubicMetre). Valid values lie in [0, 1000].
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:  Name,
		Unit:  units.GramPerCubicMetre,
		Units: maps.Clone(units.ToGramPerCubicMetre),
		Min:   0,
		Max:   1000,
	}
}
