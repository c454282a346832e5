package weather

import "math"

// HeatIndex returns the NWS heat index, in °C, of air at t °C and relative
// humidity rh %, by the algorithm of the National Weather Service's Weather
// Prediction Center ("The Heat Index Equation",
// https://www.wpc.ncep.noaa.gov/html/heatindex_equation.shtml), in °F:
//
//   - first Steadman's simple formula HI = 0.5 × (T + 61 + (T − 68) × 1.2 +
//     RH × 0.094), averaged with T; if that average is below 80 °F, it is
//     the heat index;
//   - otherwise the Rothfusz regression, minus ((13 − RH)/4) ×
//     √((17 − |T − 95|)/17) when RH < 13 % and 80 < T < 112 °F, plus
//     ((RH − 85)/10) × ((87 − T)/5) when RH > 85 % and 80 < T < 87 °F.
//
// Heat stress means nothing in the cold, where the simple formula drifts
// away from the temperature: below 40 °F (4.4 °C) the heat index is not
// defined (ok false), and neither for rh outside [0, 100] %.
func HeatIndex(t, rh float64) (float64, bool) {
	f := CelsiusToFahrenheit(t)
	if f < 40 || rh < 0 || rh > 100 {
		return 0, false
	}
	hi := 0.5 * (f + 61 + (f-68)*1.2 + rh*0.094)
	if (hi+f)/2 < 80 {
		return FahrenheitToCelsius(hi), true
	}
	hi = -42.379 + 2.04901523*f + 10.14333127*rh - 0.22475541*f*rh - 0.00683783*f*f -
		0.05481717*rh*rh + 0.00122874*f*f*rh + 0.00085282*f*rh*rh - 0.00000199*f*f*rh*rh
	switch {
	case rh < 13 && f > 80 && f < 112:
		hi -= (13 - rh) / 4 * math.Sqrt((17-math.Abs(f-95))/17)
	case rh > 85 && f > 80 && f < 87:
		hi += (rh - 85) / 10 * (87 - f) / 5
	}
	return FahrenheitToCelsius(hi), true
}

// WindChill returns the wind chill temperature, in °C, of air at t °C in a
// wind of v m/s, by the NWS/MSC formula of 2001 (JAG/TI; NWS "Wind Chill
// Temperature Index", https://www.weather.gov/safety/cold-wind-chill-chart):
// WCT = 13.12 + 0.6215·T − 11.37·V^0.16 + 0.3965·T·V^0.16, with V in km/h
// at 10 m. It is defined only for T ≤ 10 °C and V > 4.8 km/h (3 mph); ok
// is false elsewhere.
func WindChill(t, v float64) (float64, bool) {
	kmh := v * 3.6
	if t > 10 || kmh <= 4.8 {
		return 0, false
	}
	p := math.Pow(kmh, 0.16)
	return 13.12 + 0.6215*t - 11.37*p + 0.3965*t*p, true
}

// ApparentTemperature returns the Australian Bureau of Meteorology's
// apparent temperature, in °C, of air at t °C and relative humidity rh %
// in a wind of v m/s at 10 m, in the shade (Steadman 1994, as the BoM
// publishes it, http://www.bom.gov.au/info/thermal_stress/):
// AT = Ta + 0.33·e − 0.70·ws − 4.00, with e the vapour pressure in hPa,
// e = rh/100 × 6.105 × exp(17.27·Ta/(237.7 + Ta)). Not defined (ok false)
// for rh outside [0, 100] % or a negative wind.
func ApparentTemperature(t, rh, v float64) (float64, bool) {
	if rh < 0 || rh > 100 || v < 0 {
		return 0, false
	}
	return t + 0.33*bomVapourPressure(t, rh) - 0.70*v - 4.00, true
}

// ApparentTemperatureSun is ApparentTemperature with the radiation term of
// the same source: AT = Ta + 0.348·e − 0.70·ws + 0.70·Q/(ws + 10) − 4.25,
// with Q the net radiation absorbed per unit area of body surface, in
// W/m². Given the global solar radiation a station measures, it
// overestimates Q (a body absorbs a part of it): docs/derived.md says how
// sensorhub uses it. Not defined (ok false) for rh outside [0, 100] % or
// a negative wind.
func ApparentTemperatureSun(t, rh, v, q float64) (float64, bool) {
	if rh < 0 || rh > 100 || v < 0 {
		return 0, false
	}
	return t + 0.348*bomVapourPressure(t, rh) - 0.70*v + 0.70*q/(v+10) - 4.25, true
}

// bomVapourPressure is the vapour pressure, in hPa, as the BoM's apparent
// temperature formula states it (its own Magnus constants).
func bomVapourPressure(t, rh float64) float64 {
	return rh / 100 * 6.105 * math.Exp(17.27*t/(237.7+t))
}

// CelsiusToFahrenheit converts °C to °F.
func CelsiusToFahrenheit(c float64) float64 { return c*9/5 + 32 }

// FahrenheitToCelsius converts °F to °C.
func FahrenheitToCelsius(f float64) float64 { return (f - 32) * 5 / 9 }
