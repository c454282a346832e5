// Package sealevelpressure defines the built-in sensor type for the air pressure reduced to mean sea level, stored in hectopascals:
// sensorhub computes it from a station's pressure (the station pressure), its temperature and the station's elevation (package sinks/postgres/derived); a station may also send its own, which replaces the computed value. The range reaches above pressure's: a station's reduction with a wrong elevation is a fault to see, not to reject.
// Give it to a hub with
//
//	sensorhub.New(cfg, sealevelpressure.Type())
//
// or every built-in type at once with handlers.Builtin.
package sealevelpressure

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "sea_level_pressure"

// Type returns the sea_level_pressure sensor type. Values are stored in hPa; other
// units are converted first (units.ToHectopascal). Valid values lie in [300, 1200].
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:  Name,
		Unit:  units.Hectopascal,
		Units: maps.Clone(units.ToHectopascal),
		Min:   300,
		Max:   1200,
	}
}
