// Package temperature defines the built-in sensor type for air temperature,
// stored in degrees Celsius. Give it to a hub with
//
//	sensorhub.New(cfg, temperature.Type())
//
// or every built-in type at once with handlers.Builtin.
package temperature

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "temperature"

// Type returns the temperature sensor type. Values are stored in degrees
// Celsius (Cel); readings in K, degF, °F, degC or °C are converted first
// (units.ToCelsius). Valid values lie in [-100, 100] °C, which holds every
// air temperature recorded on Earth (-89.2 °C to 56.7 °C) with margin. Each
// call returns a new value: changing its Units map affects no other caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.Celsius,
		Units:       maps.Clone(units.ToCelsius),
		Min:         -100,
		Max:         100,
		Aggregation: sensorhub.AggregateInstant,
	}
}
