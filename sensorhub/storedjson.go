package sensorhub

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// readingsStoredPayload returns the JSON of the ReadingsStored payload that
// lists readings.
func readingsStoredPayload(readings []Reading) ([]byte, error) {
	if payload, ok := appendReadingsStored(make([]byte, 0, 128*len(readings)), readings); ok {
		return payload, nil
	}
	p := ReadingsStored{Readings: make([]StoredReading, len(readings))}
	for i, r := range readings {
		p.Readings[i] = StoredReading{Station: r.Station, Sensor: r.Sensor, Time: r.Time.UTC(), Value: r.Value, Unit: r.Unit}
	}
	return json.Marshal(p)
}

// appendReadingsStored appends the JSON of the ReadingsStored payload of
// readings, byte for byte as encoding/json writes it, without reflection:
// the sink builds one such payload per MaxReadingsPerEvent readings it
// commits, and json.Marshal took about a twentieth of the service's CPU
// in a drain. It reports false, having appended part of it, when a value
// is one it leaves to encoding/json: a string with a byte to escape, a
// value that is not finite, or a year outside 0 to 9999.
func appendReadingsStored(dst []byte, readings []Reading) ([]byte, bool) {
	dst = append(dst, `{"readings":[`...)
	for i, r := range readings {
		if i > 0 {
			dst = append(dst, ',')
		}
		t := r.Time.UTC()
		if !plainJSON(r.Station) || !plainJSON(r.Sensor) || !plainJSON(r.Unit) ||
			math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || t.Year() < 0 || t.Year() > 9999 {
			return dst, false
		}
		dst = append(append(dst, `{"station":"`...), r.Station...)
		dst = append(append(dst, `","sensor":"`...), r.Sensor...)
		dst = t.AppendFormat(append(dst, `","ts":"`...), time.RFC3339Nano)
		dst = appendJSONFloat(append(dst, `","value":`...), r.Value)
		dst = append(append(dst, `,"unit":"`...), r.Unit...)
		dst = append(dst, `"}`...)
	}
	return append(dst, "]}"...), true
}

// plainJSON says whether s is its own JSON string content: printable ASCII
// that encoding/json writes as it is (no quote, backslash or HTML
// character, which it escapes).
func plainJSON(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendJSONFloat appends the finite v as encoding/json writes a float64:
// the shortest decimal that reads back as v, in exponent form below 1e-6
// and from 1e21 on (as ECMAScript's Number.prototype.toString), with a
// one-digit negative exponent not padded ("1e-7", not "1e-07").
func appendJSONFloat(dst []byte, v float64) []byte {
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, v, format, -1, 64)
	if n := len(dst); format == 'e' && n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}
