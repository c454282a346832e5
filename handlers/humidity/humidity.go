// Package humidity defines the built-in sensor type for the relative
// humidity of the air, stored in percent. Give it to a hub with
//
//	sensorhub.New(cfg, humidity.Type())
//
// or every built-in type at once with handlers.Builtin.
package humidity

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "humidity"

// Type returns the humidity sensor type. Values are stored in percent
// relative humidity (%RH); a plain % is accepted as the same unit
// (units.ToRelativeHumidity). Valid values lie in [0, 100]: a reading above
// saturation is a sensor fault, such as condensation on the element, and is
// rejected rather than clipped. Each call returns a new value: changing its
// Units map affects no other caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.RelativeHumidity,
		Units:       maps.Clone(units.ToRelativeHumidity),
		Min:         0,
		Max:         100,
		Aggregation: sensorhub.AggregateInstant,
	}
}
