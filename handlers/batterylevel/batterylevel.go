// Package batterylevel defines the built-in sensor type for the charge
// level of a station's battery, stored in percent. A battery voltage is
// another quantity with another canonical unit, so it has its own type, in
// package battery. Give it to a hub with
//
//	sensorhub.New(cfg, batterylevel.Type())
//
// or every built-in type at once with handlers.Builtin.
package batterylevel

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "battery_level"

// Type returns the battery level sensor type. Values are stored in percent
// (%); a ratio between 0 and 1 (/) is converted first (units.ToPercent).
// Valid values lie in [0, 100], empty to full. Each call returns a new
// value: changing its Units map affects no other caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Percent,
		Units:       maps.Clone(units.ToPercent),
		Min:         0,
		Max:         100,
		Aggregation: sensorhub.AggregateLast,
	}
}
