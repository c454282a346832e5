// Package solarradiation defines the built-in sensor type for solar
// radiation, the global irradiance on a horizontal surface as a pyranometer
// measures it, stored in watts per square metre. Give it to a hub with
//
//	sensorhub.New(cfg, solarradiation.Type())
//
// or every built-in type at once with handlers.Builtin.
package solarradiation

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "solar_radiation"

// Type returns the solar radiation sensor type. Values are stored in watts
// per square metre (W/m2); W/m² is accepted too. Valid values lie in
// [-10, 2000] W/m2: thermopile pyranometers read a few W/m2 below zero at
// night (thermal offset), which is kept as measured; sunlight outside the
// atmosphere carries about 1361 W/m2, and the margin covers the brief peaks
// above it that light reflected from the edges of clouds causes.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:        Name,
		Unit:        units.WattPerSquareM,
		Units:       maps.Clone(units.ToWattPerSquareM),
		Min:         -10,
		Max:         2000,
		Aggregation: sensorhub.AggregateInstant,
	}
}
