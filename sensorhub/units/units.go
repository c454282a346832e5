// Package units holds the canonical SenML unit codes (RFC 8428) of the
// built-in sensor types and the conversions into them from units that
// producers commonly send. Handlers share these tables so that, for example,
// wind speed and wind gust accept exactly the same units.
package units

import (
	"math"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Canonical unit codes, as stored in the readings table's unit column. They
// are part of the storage contract: do not change them.
const (
	Celsius          = "Cel"
	RelativeHumidity = "%RH"
	Hectopascal      = "hPa"
	MetrePerSecond   = "m/s"
	Degree           = "deg"
	Millimetre       = "mm"
	Lux              = "lx"
	WattPerSquareM   = "W/m2"
	Volt             = "V"
	Percent          = "%"
	Ratio            = "/"
)

func scale(f float64) sensorhub.Conversion { return func(v float64) float64 { return v * f } }

func identity(v float64) float64 { return v }

// ToCelsius accepts kelvin and degrees Fahrenheit, plus common spellings of
// degrees Celsius.
var ToCelsius = map[string]sensorhub.Conversion{
	"K":    func(v float64) float64 { return v - 273.15 },
	"degF": func(v float64) float64 { return (v - 32) * 5 / 9 },
	"°F":   func(v float64) float64 { return (v - 32) * 5 / 9 },
	"degC": identity,
	"°C":   identity,
}

// ToRelativeHumidity accepts a plain percent sign for %RH.
var ToRelativeHumidity = map[string]sensorhub.Conversion{
	"%": identity,
}

// ToHectopascal accepts pascal, kilopascal, millibar, bar, inches and
// millimetres of mercury.
var ToHectopascal = map[string]sensorhub.Conversion{
	"Pa":   scale(0.01),
	"kPa":  scale(10),
	"mbar": identity,
	"bar":  scale(1000),
	"inHg": scale(25.4 * 1.33322387415), // 25.4 mm of mercury
	"mmHg": scale(1.33322387415),
}

// ToMetrePerSecond accepts kilometres per hour, miles per hour and knots.
var ToMetrePerSecond = map[string]sensorhub.Conversion{
	"km/h": scale(1 / 3.6),
	"mph":  scale(0.44704),
	"kn":   scale(1852.0 / 3600),
	"kt":   scale(1852.0 / 3600),
}

// ToDegree accepts radians and the ° sign.
var ToDegree = map[string]sensorhub.Conversion{
	"rad": scale(180 / math.Pi),
	"°":   identity,
}

// ToMillimetre accepts inches, centimetres and metres (of rain), and litres
// per square metre, which is the same as millimetres.
var ToMillimetre = map[string]sensorhub.Conversion{
	"l/m2": identity,
	"in":   scale(25.4),
	"cm":   scale(10),
	"m":    scale(1000),
}

// ToWattPerSquareM accepts the spelling with a superscript two.
var ToWattPerSquareM = map[string]sensorhub.Conversion{
	"W/m²": identity,
}

// ToVolt accepts millivolts.
var ToVolt = map[string]sensorhub.Conversion{
	"mV": scale(0.001),
}

// ToPercent accepts a ratio between 0 and 1.
var ToPercent = map[string]sensorhub.Conversion{
	"/": scale(100),
}

// Canonical unit codes of the derived quantities (DESIGN.md §13), as
// stored in the readings table's unit column: do not change them.
const (
	GramPerCubicMetre = "g/m3"
	MillimetrePerHour = "mm/h"
)

// ToGramPerCubicMetre accepts kilograms per cubic metre and the spelling
// with a superscript three.
var ToGramPerCubicMetre = map[string]sensorhub.Conversion{
	"kg/m3": scale(1000),
	"g/m³":  identity,
}

// ToMillimetrePerHour accepts inches per hour.
var ToMillimetrePerHour = map[string]sensorhub.Conversion{
	"in/h": scale(25.4),
}
