// Package temperature defines the built-in sensor type for air temperature,
// stored in degrees Celsius. Give it to a hub with
//
//	sensorhub.New(cfg, temperature.Type())
//
// or every built-in type at once with handlers.Builtin.
package temperature

import (
	"time"

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
		// Quality control (docs/quality.md): plausible monthly ranges for
		// the mid-latitudes; a step of 8 °C away from both neighbours; 3 °C
		// in a minute; the same value for 6 readings over 3 hours.
		QC: sensorhub.QC{
			Climatology: [12]sensorhub.Range{
				{Min: -45, Max: 25}, {Min: -45, Max: 27}, {Min: -40, Max: 32}, {Min: -30, Max: 37}, {Min: -20, Max: 42}, {Min: -10, Max: 47},
				{Min: -5, Max: 50}, {Min: -5, Max: 50}, {Min: -15, Max: 45}, {Min: -25, Max: 38}, {Min: -35, Max: 30}, {Min: -45, Max: 25},
			},
			Spike: 8, RateOfChange: 3,
			FlatLine: sensorhub.FlatLine{Count: 6, Period: 3 * time.Hour},
		},
	}
}
