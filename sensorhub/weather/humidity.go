package weather

import "math"

// Magnus–Tetens constants for saturation vapour pressure over liquid water,
// es(T) = MagnusC × exp(MagnusA × T / (MagnusB + T)) hPa with T in °C:
// Alduchov and Eskridge (1996), "Improved Magnus form approximation of
// saturation vapor pressure", J. Appl. Meteor. 35, 601–609, their AERK
// fit (error below 0.4 % from −40 °C to 50 °C). Dew point is defined over
// water also below 0 °C, as WMO reports it (WMO-No. 8, Annex 4.B);
// examples/frostpoint computes the frost point over ice.
const (
	MagnusA = 17.625
	MagnusB = 243.04 // °C
	MagnusC = 6.1094 // hPa
)

// SaturationVapourPressure returns the saturation vapour pressure over
// water at t °C, in hPa (Magnus–Tetens, constants above).
func SaturationVapourPressure(t float64) float64 {
	return MagnusC * math.Exp(MagnusA*t/(MagnusB+t))
}

// VapourPressure returns the partial pressure of water vapour, in hPa, of
// air at t °C and relative humidity rh %.
func VapourPressure(t, rh float64) float64 {
	return rh / 100 * SaturationVapourPressure(t)
}

// DewPoint returns the dew point, in °C, of air at t °C and relative
// humidity rh %, by inverting the Magnus–Tetens formula:
// γ = ln(rh/100) + a·t/(b+t), Td = b·γ/(a−γ). It is not defined (ok false)
// for rh ≤ 0 % (dry air has no dew point) or rh > 100 %.
func DewPoint(t, rh float64) (td float64, ok bool) {
	if rh <= 0 || rh > 100 {
		return 0, false
	}
	g := math.Log(rh/100) + MagnusA*t/(MagnusB+t)
	return MagnusB * g / (MagnusA - g), true
}

// AbsoluteHumidity returns the mass of water vapour per volume of air, in
// g/m³, at t °C and relative humidity rh %: ρv = e / (Rv·T) with e the
// vapour pressure (Magnus–Tetens) and Rv = 461.5 J/(kg·K), the ideal gas
// law for water vapour (WMO-No. 8, Annex 4.B). Not defined (ok false) for
// rh outside [0, 100] %.
func AbsoluteHumidity(t, rh float64) (float64, bool) {
	if rh < 0 || rh > 100 {
		return 0, false
	}
	const rv = 461.5                            // J/(kg·K), specific gas constant of water vapour
	e := VapourPressure(t, rh) * 100            // Pa
	return e / (rv * (t + 273.15)) * 1000, true // kg/m³ → g/m³
}
