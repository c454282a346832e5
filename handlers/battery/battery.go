// Package battery defines the built-in sensor type for the voltage of a
// station's battery, stored in volts. A charge level in percent is another
// quantity with another canonical unit, so it has its own type, in package
// batterylevel. Give it to a hub with
//
//	sensorhub.New(cfg, battery.Type())
//
// or every built-in type at once with handlers.Builtin.
package battery

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "battery"

// Type returns the battery sensor type. Values are stored in volts (V);
// readings in mV are converted first (units.ToVolt). Valid values lie in
// [0, 100] V, from a single cell to the 48 V banks of solar-powered
// stations, with margin; a negative reading is a wiring fault. Each call
// returns a new value: changing its Units map affects no other caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Volt,
		Units:       maps.Clone(units.ToVolt),
		Min:         0,
		Max:         100,
		Aggregation: sensorhub.AggregateLast,
	}
}
