// Package illuminance defines the built-in sensor type for illuminance, the
// visible light falling on a surface, stored in lux. Register it on a hub
// with
//
//	sensorhub.New(cfg, illuminance.Type())
//
// or every built-in type at once with handlers.Builtin.
package illuminance

import (
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "illuminance"

// Type returns the illuminance sensor type. Values are stored in lux (lx),
// the only accepted unit. Valid values lie in [0, 200000] lx: direct
// sunlight gives up to about 130000 lx, and the margin covers light
// reflected from snow, water or clouds.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Lux,
		Min:         0,
		Max:         200000,
		Aggregation: sensorhub.AggregateInstant,
	}
}
