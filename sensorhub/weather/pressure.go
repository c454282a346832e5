package weather

import "math"

// Constants of the sea-level reduction: standard gravity, the specific gas
// constant of dry air, and the lapse rate of the ICAO standard atmosphere.
const (
	gravity   = 9.80665 // m/s²
	dryAirGas = 287.05  // J/(kg·K)
	lapseRate = 0.0065  // K/m
)

// SeaLevelPressure reduces the station pressure p hPa, measured at
// elevation h m with air temperature t °C, to mean sea level by the
// hypsometric equation (WMO-No. 8, Part I, Chapter 3, 3.11, and WMO-No.
// 306's simplest method): p0 = p × exp(g·h / (Rd·Tm)), where the fictitious
// air column below the station has the mean temperature Tm = t + 273.15 +
// γ·h/2, the station temperature warmed by the standard lapse rate γ =
// 0.0065 K/m over half the column. Humidity is neglected (below 0.1 hPa
// for stations under 500 m). A station below sea level (h < 0) is reduced
// upwards the same way. ok is false for a non-positive pressure.
func SeaLevelPressure(p, t, h float64) (float64, bool) {
	if p <= 0 {
		return 0, false
	}
	tm := t + 273.15 + lapseRate*h/2
	return p * math.Exp(gravity*h/(dryAirGas*tm)), true
}
