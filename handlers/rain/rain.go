// Package rain defines the built-in sensor type for precipitation, stored
// as a depth in millimetres. Give it to a hub with
//
//	sensorhub.New(cfg, rain.Type())
//
// or every built-in type at once with handlers.Builtin.
package rain

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "rain"

// Type returns the rain sensor type. Values are stored in millimetres (mm);
// readings in in, cm or m are converted first (units.ToMillimetre). Valid
// values lie in [0, 10000] mm, which holds both an amount per interval (the
// one-day record is 1825 mm) and a running total that the station resets at
// least once a year, everywhere but at the few wettest places on Earth.
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Millimetre,
		Units:       maps.Clone(units.ToMillimetre),
		Min:         0,
		Max:         10000,
		Aggregation: sensorhub.AggregateAmount,
	}
}
