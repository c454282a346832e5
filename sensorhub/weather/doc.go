// Package weather holds the formulas of the derived weather quantities that
// sensorhub computes from readings (DESIGN.md §13): dew point, heat index,
// wind chill, apparent temperature, absolute humidity, sea-level pressure,
// rain rate, and rain amounts from a station's running total. They are pure
// functions in sensorhub's canonical units (°C, %RH, m/s, hPa, mm, W/m²),
// each citing its source; the tests check them against the published
// tables. A quantity that is not defined for its inputs (wind chill above
// 10 °C, a dew point at 0 % humidity) reports ok = false: nothing is to be
// stored, rather than a made-up value.
//
//	td, ok := weather.DewPoint(20, 50) // 9.3 °C, true
//
// Package sinks/postgres/derived computes them as readings are stored.
package weather
