package weather_test

import (
	"math"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/weather"
)

// near fails the test unless got is within tol of want.
func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ± %v", what, got, want, tol)
	}
}

// Dew points from the psychrometric tables (e.g. NOAA's dew point tables,
// Smithsonian Meteorological Tables, over water), to 0.1 °C; the Magnus
// fit is within 0.15 °C of them over this range.
func TestDewPointMatchesTables(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ t, rh, want float64 }{
		{20, 50, 9.3}, {30, 50, 18.4}, {25, 80, 21.3}, {10, 90, 8.4}, {35, 40, 19.4},
		{0, 60, -6.8}, {-10, 80, -12.8}, {-20, 50, -27.8}, // negative temperatures, over water
		{0, 100, 0}, {25, 100, 25}, {-15, 100, -15}, // saturated air: the dew point is the temperature
	} {
		got, ok := weather.DewPoint(c.t, c.rh)
		if !ok {
			t.Errorf("DewPoint(%v, %v) not defined", c.t, c.rh)
		}
		near(t, "DewPoint", got, c.want, 0.15)
	}
	for _, rh := range []float64{0, -1, 100.5} {
		if _, ok := weather.DewPoint(20, rh); ok {
			t.Errorf("DewPoint(20, %v) defined, want undefined", rh)
		}
	}
}

// Heat index from the NWS heat index chart
// (https://www.weather.gov/safety/heat-index, in °F), within ±0.5 °C.
func TestHeatIndexMatchesNWSChart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ f, rh, want float64 }{
		{80, 40, 80}, {80, 100, 87}, {86, 90, 105}, {90, 50, 95}, {90, 70, 106},
		{96, 40, 101}, {100, 40, 109}, {100, 60, 129}, {104, 50, 131}, {110, 40, 136},
	} {
		got, ok := weather.HeatIndex(weather.FahrenheitToCelsius(c.f), c.rh)
		if !ok {
			t.Errorf("HeatIndex(%v °F, %v) not defined", c.f, c.rh)
		}
		near(t, "HeatIndex", got, weather.FahrenheitToCelsius(c.want), 0.5)
	}
}

func TestHeatIndexAdjustmentsAndSimpleFormula(t *testing.T) {
	t.Parallel()
	c := weather.FahrenheitToCelsius
	// Below 80 °F, Steadman's simple formula: 70 °F at 50 % gives
	// 0.5 × (70 + 61 + 2 × 1.2 + 4.7) = 69.05 °F.
	got, _ := weather.HeatIndex(c(70), 50)
	near(t, "HeatIndex(70 °F, 50 %)", got, c(69.05), 0.01)
	// Low humidity: the Rothfusz value at 100 °F and 10 % is 94.75 °F,
	// less (13 − 10)/4 × √((17 − 5)/17) = 0.630 °F.
	got, _ = weather.HeatIndex(c(100), 10)
	near(t, "HeatIndex(100 °F, 10 %)", got, c(94.75-0.630), 0.01)
	// High humidity: at 84 °F and 95 %, plus (95 − 85)/10 × (87 − 84)/5 =
	// 0.6 °F over the regression's 100.28 °F.
	got, _ = weather.HeatIndex(c(84), 95)
	near(t, "HeatIndex(84 °F, 95 %)", got, c(100.28+0.6), 0.01)
	// Undefined in the cold and for impossible humidities.
	for _, in := range [][2]float64{{c(39), 50}, {-10, 80}, {30, -1}, {30, 101}} {
		if _, ok := weather.HeatIndex(in[0], in[1]); ok {
			t.Errorf("HeatIndex(%v, %v) defined, want undefined", in[0], in[1])
		}
	}
}

// Wind chill from the NWS wind chill chart
// (https://www.weather.gov/safety/cold-wind-chill-chart, °F and mph),
// to the chart's whole degree.
func TestWindChillMatchesNWSChart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ f, mph, want float64 }{
		{40, 5, 36}, {30, 5, 25}, {20, 10, 9}, {10, 30, -12}, {0, 15, -19},
		{-10, 20, -35}, {-20, 40, -57}, {-45, 60, -98},
	} {
		got, ok := weather.WindChill(weather.FahrenheitToCelsius(c.f), c.mph*0.44704)
		if !ok {
			t.Errorf("WindChill(%v °F, %v mph) not defined", c.f, c.mph)
		}
		near(t, "WindChill °F", weather.CelsiusToFahrenheit(got), c.want, 0.5)
	}
	// Defined only for T ≤ 10 °C and wind > 4.8 km/h.
	for _, in := range [][2]float64{{10.1, 10}, {25, 10}, {0, 4.8 / 3.6}, {0, 1}, {-20, 0}} {
		if _, ok := weather.WindChill(in[0], in[1]); ok {
			t.Errorf("WindChill(%v °C, %v m/s) defined, want undefined", in[0], in[1])
		}
	}
	if _, ok := weather.WindChill(10, 5/3.6); !ok {
		t.Error("WindChill(10 °C, 5 km/h) undefined, want defined: its edges are T ≤ 10 °C and V > 4.8 km/h")
	}
}

// Apparent temperature worked by hand from the BoM's formulas: at 25 °C
// and 50 %, e = 0.5 × 6.105 × exp(17.27 × 25 / 262.7) = 15.80 hPa.
func TestApparentTemperature(t *testing.T) {
	t.Parallel()
	got, _ := weather.ApparentTemperature(25, 50, 0)
	near(t, "AT(25, 50, 0)", got, 25+0.33*15.80-4, 0.02)
	got, _ = weather.ApparentTemperature(25, 50, 5)
	near(t, "AT(25, 50, 5)", got, 25+0.33*15.80-3.5-4, 0.02)
	got, _ = weather.ApparentTemperatureSun(25, 50, 5, 600)
	near(t, "AT(25, 50, 5, 600 W/m²)", got, 25+0.348*15.80-3.5+0.7*600/15-4.25, 0.02)
	// In the cold, the wind cools: −5 °C at 80 % in 10 m/s (e = 3.36 hPa).
	got, _ = weather.ApparentTemperature(-5, 80, 10)
	near(t, "AT(−5, 80, 10)", got, -5+0.33*3.36-7-4, 0.02)
	if _, ok := weather.ApparentTemperature(20, 120, 1); ok {
		t.Error("AT at 120 % defined")
	}
}

// Saturation vapour density from the tables (e.g. CRC Handbook,
// "Vapor pressure and density of water"): within 0.15 g/m³.
func TestAbsoluteHumidityMatchesTables(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ t, want float64 }{{0, 4.85}, {10, 9.40}, {20, 17.30}, {30, 30.38}} {
		got, _ := weather.AbsoluteHumidity(c.t, 100)
		near(t, "AbsoluteHumidity at saturation", got, c.want, 0.15)
	}
	got, _ := weather.AbsoluteHumidity(20, 50)
	near(t, "AbsoluteHumidity(20, 50)", got, 17.30/2, 0.1)
	got, _ = weather.AbsoluteHumidity(20, 0)
	near(t, "AbsoluteHumidity(20, 0)", got, 0, 0)
}

// The ICAO standard atmosphere (ISO 2533) reduces to 1013.25 hPa: at 1000 m
// it has 898.76 hPa and 8.50 °C; at 500 m, 954.61 hPa and 11.75 °C.
func TestSeaLevelPressureOfTheStandardAtmosphere(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ p, t, h float64 }{{898.76, 8.5, 1000}, {954.61, 11.75, 500}, {1013.25, 15, 0}, {795.01, 2, 2000}} {
		got, ok := weather.SeaLevelPressure(c.p, c.t, c.h)
		if !ok {
			t.Fatalf("SeaLevelPressure(%v, %v, %v) not defined", c.p, c.t, c.h)
		}
		near(t, "SeaLevelPressure", got, 1013.25, 0.3)
	}
	// Below sea level the reduction lowers the pressure.
	if got, _ := weather.SeaLevelPressure(1020, 20, -30); got >= 1020 {
		t.Errorf("SeaLevelPressure at −30 m = %v, want below 1020", got)
	}
	if _, ok := weather.SeaLevelPressure(0, 10, 100); ok {
		t.Error("SeaLevelPressure of 0 hPa defined")
	}
}

func TestRainRateAndAmounts(t *testing.T) {
	t.Parallel()
	got, _ := weather.RainRate(1.5, 15*time.Minute)
	near(t, "RainRate(1.5 mm in 15 min)", got, 6, 1e-9)
	if _, ok := weather.RainRate(1, 0); ok {
		t.Error("RainRate over no window defined")
	}
	near(t, "RainAmount(10.2, 10.6)", weather.RainAmount(10.2, 10.6), 0.4, 1e-9)
	near(t, "RainAmount(10.2, 10.2)", weather.RainAmount(10.2, 10.2), 0, 0)
	near(t, "RainAmount after a reset", weather.RainAmount(52.4, 0.3), 0.3, 0)
	if !weather.RainGlitch(10.2, 0, 10.4) || weather.RainGlitch(10.2, 0, 0.2) || weather.RainGlitch(10.2, 10.4, 10.6) {
		t.Error("RainGlitch: a drop and an immediate return is a glitch; a drop that stays is a reset; a rise is neither")
	}
}
