// Package uvindex defines the built-in sensor type for the UV index, the
// dimensionless WHO scale of sunburn-causing ultraviolet radiation.
// Give it to a hub with
//
//	sensorhub.New(cfg, uvindex.Type())
//
// or every built-in type at once with handlers.Builtin.
package uvindex

import (
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "uv_index"

// Type returns the UV index sensor type. Values are stored as a
// dimensionless ratio (SenML "/"), the only accepted unit. Valid values lie
// in [0, 25]: 11 and above is already "extreme", and ground stations record
// about 20 at most, on the high plateaus of the tropical Andes.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Ratio,
		Min:         0,
		Max:         25,
		Aggregation: sensorhub.AggregateInstant,
	}
}
