// Package soilmoisture defines the built-in sensor type for soil moisture,
// the water content of the soil, stored in percent. Register it on a hub
// with
//
//	sensorhub.New(cfg, soilmoisture.Type())
//
// or every built-in type at once with handlers.Builtin.
package soilmoisture

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "soil_moisture"

// Type returns the soil moisture sensor type. Values are stored in percent
// (%); a ratio between 0 and 1 (/) is converted first (units.ToPercent).
// Valid values lie in [0, 100], the whole scale, because what 100 % means
// depends on the probe: volumetric water content or a share of its
// calibrated range. Each call returns a new value: changing its Units map
// affects no other caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Percent,
		Units:       maps.Clone(units.ToPercent),
		Min:         0,
		Max:         100,
		Aggregation: sensorhub.AggregateInstant,
	}
}
