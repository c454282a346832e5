// Package pressure defines the built-in sensor type for atmospheric
// pressure, stored in hectopascals. Give it to a hub with
//
//	sensorhub.New(cfg, pressure.Type())
//
// or every built-in type at once with handlers.Builtin.
package pressure

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "pressure"

// Type returns the pressure sensor type. Values are stored in hectopascals
// (hPa); readings in Pa, kPa, mbar, bar, inHg or mmHg are converted first
// (units.ToHectopascal). Valid values lie in [300, 1100] hPa: station
// pressure from sea level up to the summit of Everest (about 337 hPa), and
// also pressure reduced to sea level, whose records are 870 and 1084.8 hPa.
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Hectopascal,
		Units:       maps.Clone(units.ToHectopascal),
		Min:         300,
		Max:         1100,
		Aggregation: sensorhub.AggregateInstant,
	}
}
