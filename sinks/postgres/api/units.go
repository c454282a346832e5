package api

import (
	"strconv"

	"github.com/sensorhub/sensorhub/sensorhub/units"
)

// unitSystem is the unit system an answer's values are in.
type unitSystem int

const (
	// canonical is the stored unit (DESIGN.md §3), the default.
	canonical unitSystem = iota
	// usCustomary is US customary units for display (units=us): °F, mph,
	// inHg and in. Units without a US customary counterpart stay as they
	// are.
	usCustomary
)

// conversion turns a value of a canonical unit into another unit:
// value*scale + offset.
type conversion struct {
	unit          string
	scale, offset float64
}

// usConversions maps canonical unit codes to their US customary display
// units. The factors are the inverses of the exact definitions the units
// package converts with (NIST SP 811, appendix B.8: 1 mph = 0.44704 m/s,
// 1 in = 25.4 mm, 1 inHg (0 °C) = 33.8639 hPa; °F = °C × 9/5 + 32).
var usConversions = map[string]conversion{
	units.Celsius:        {unit: "°F", scale: 9.0 / 5, offset: 32},
	units.MetrePerSecond: {unit: "mph", scale: 1 / units.ToMetrePerSecond["mph"](1)},
	units.Hectopascal:    {unit: "inHg", scale: 1 / units.ToHectopascal["inHg"](1)},
	units.Millimetre:     {unit: "in", scale: 1 / units.ToMillimetre["in"](1)},
	"mm/h":               {unit: "in/h", scale: 1 / units.ToMillimetre["in"](1)},
}

// converter returns the conversion of values of unit in system s; ok is
// false when values stay as they are.
func (s unitSystem) converter(unit string) (c conversion, ok bool) {
	if s != usCustomary {
		return conversion{}, false
	}
	c, ok = usConversions[unit]
	return c, ok
}

// value converts v.
func (c conversion) value(v float64) float64 { return roundDisplay(v*c.scale + c.offset) }

// sum converts a sum of n values: the offset counts once per value.
func (c conversion) sum(s float64, n int64) float64 {
	return roundDisplay(s*c.scale + c.offset*float64(n))
}

// roundDisplay rounds a converted value to 12 significant digits, far
// finer than any sensor, so that 10.5 °C shows as 50.9 °F rather than
// 50.900000000000006.
func roundDisplay(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return r
}
