// Package raintotal defines the built-in sensor type for a station's running rain total, a counter the station resets now and then, stored in millimetres:
// sensorhub turns it into rain amounts (type rain) with reset detection (package sinks/postgres/derived). The range holds a counter that never resets for a decade at the wettest places on Earth.
// Give it to a hub with
//
//	sensorhub.New(cfg, raintotal.Type())
//
// or every built-in type at once with handlers.Builtin.
package raintotal

import (
	"maps"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// Name is the sensor type's wire-format name: producers send it in the
// "sensor" field and it is stored in the readings table, so it must not be
// renamed.
const Name = "rain_total"

// Type returns the rain_total sensor type. Values are stored in mm; other
// units are converted first (units.ToMillimetre). Valid values lie in [0, 100000].
// Each call returns a new value: changing its Units map affects no other
// caller.
func Type() sensorhub.SensorType {
	return sensorhub.SensorType{
		Name:  Name,
		Unit:  units.Millimetre,
		Units: maps.Clone(units.ToMillimetre),
		Min:   0,
		Max:   100000,
	}
}
