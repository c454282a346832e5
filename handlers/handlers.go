// Package handlers collects the built-in weather sensor types. Each lives in
// a package of its own under handlers/, with a README of its units and range
// and a Name constant holding its wire name; this package only lists them.
//
// Give every built-in type to a hub at once:
//
//	hub, err := sensorhub.New(cfg, handlers.Builtin()...)
//
// or only those a deployment needs, from their packages:
//
//	hub, err := sensorhub.New(cfg, temperature.Type(), humidity.Type())
package handlers

import (
	"github.com/sensorhub/sensorhub/sensorhub"

	"github.com/sensorhub/sensorhub/handlers/absolutehumidity"
	"github.com/sensorhub/sensorhub/handlers/apparenttemperature"
	"github.com/sensorhub/sensorhub/handlers/battery"
	"github.com/sensorhub/sensorhub/handlers/batterylevel"
	"github.com/sensorhub/sensorhub/handlers/dewpoint"
	"github.com/sensorhub/sensorhub/handlers/heatindex"
	"github.com/sensorhub/sensorhub/handlers/humidity"
	"github.com/sensorhub/sensorhub/handlers/illuminance"
	"github.com/sensorhub/sensorhub/handlers/pressure"
	"github.com/sensorhub/sensorhub/handlers/rain"
	"github.com/sensorhub/sensorhub/handlers/rainrate"
	"github.com/sensorhub/sensorhub/handlers/raintotal"
	"github.com/sensorhub/sensorhub/handlers/sealevelpressure"
	"github.com/sensorhub/sensorhub/handlers/soilmoisture"
	"github.com/sensorhub/sensorhub/handlers/solarradiation"
	"github.com/sensorhub/sensorhub/handlers/temperature"
	"github.com/sensorhub/sensorhub/handlers/uvindex"
	"github.com/sensorhub/sensorhub/handlers/windchill"
	"github.com/sensorhub/sensorhub/handlers/winddirection"
	"github.com/sensorhub/sensorhub/handlers/windgust"
	"github.com/sensorhub/sensorhub/handlers/windspeed"
)

// Builtin returns every built-in sensor type, always in the same order:
// temperature, humidity, pressure, wind_speed, wind_gust, wind_direction,
// rain, illuminance, uv_index, solar_radiation, soil_moisture, battery,
// battery_level, then rain_total and the derived quantities of DESIGN.md
// §13, which sensorhub computes and devices may send too: dew_point,
// heat_index, wind_chill, apparent_temperature, absolute_humidity,
// sea_level_pressure and rain_rate. New types are appended. Each call returns new values, so a
// caller may change them without affecting other callers.
func Builtin() []sensorhub.SensorType {
	return []sensorhub.SensorType{
		temperature.Type(),
		humidity.Type(),
		pressure.Type(),
		windspeed.Type(),
		windgust.Type(),
		winddirection.Type(),
		rain.Type(),
		illuminance.Type(),
		uvindex.Type(),
		solarradiation.Type(),
		soilmoisture.Type(),
		battery.Type(),
		batterylevel.Type(),
		raintotal.Type(),
		dewpoint.Type(),
		heatindex.Type(),
		windchill.Type(),
		apparenttemperature.Type(),
		absolutehumidity.Type(),
		sealevelpressure.Type(),
		rainrate.Type(),
	}
}
