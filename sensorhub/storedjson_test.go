package sensorhub

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestAppendReadingsStoredWritesWhatJSONMarshalWrites compares the
// hand-written payload with encoding/json's, byte for byte, on random
// readings: names and units of plain and escaped characters, values at the
// edges of the exponent form, times with and without fractions, in and out
// of the years JSON times may have.
func TestAppendReadingsStoredWritesWhatJSONMarshalWrites(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 25))
	plain := []string{"", "roof", "station-7", "Cel", "m/s", "%", "hPa"}
	escaped := []string{"°C", `a"b`, `a\b`, "a<b", "b>a", "x&y", "tab\t", "\x7f", "line\u2028", "naïve"}
	text := func() string {
		if rng.IntN(20) == 0 {
			return escaped[rng.IntN(len(escaped))]
		}
		return plain[rng.IntN(len(plain))]
	}
	values := []float64{0, math.Copysign(0, -1), 1, -1, 14.5, 1e-6, 9.99999e-7, 1e-7, -1e-7, 1e20, 1e21, 9.999999999999999e20, -1e21,
		123456789012345678901, 5e-324, math.MaxFloat64, -math.MaxFloat64, 0.1, 1.0 / 3, 1e-300, 2.5e-10, math.NaN(), math.Inf(1)}
	times := []time.Time{
		time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 12, 1, 12, 0, 0, 123456000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2024, 3, 31, 2, 30, 0, 500000000, time.FixedZone("", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	plainSeen := 0
	for range 20000 {
		readings := make([]Reading, 1+rng.IntN(3))
		for i := range readings {
			v := values[rng.IntN(len(values))]
			if rng.IntN(3) == 0 {
				v = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(60)-30))
			}
			readings[i] = Reading{Station: text(), Sensor: text(), Unit: text(), Value: v,
				Time: times[rng.IntN(len(times))].Add(time.Duration(rng.IntN(1e6)) * time.Microsecond)}
		}
		got, handWritten := appendReadingsStored(nil, readings)
		p := ReadingsStored{Readings: make([]StoredReading, len(readings))}
		for i, r := range readings {
			p.Readings[i] = StoredReading{Station: r.Station, Sensor: r.Sensor, Time: r.Time.UTC(), Value: r.Value, Unit: r.Unit}
		}
		want, err := json.Marshal(p)
		if !handWritten {
			if err == nil && !needsEncodingJSON(readings) {
				t.Fatalf("%+v: left to encoding/json, which it need not be", readings)
			}
			continue
		}
		plainSeen++
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%+v:\n got %s\nwant %s (%v)", readings, got, want, err)
		}
	}
	if plainSeen < 1000 {
		t.Errorf("only %d of 20,000 random payloads written by hand, want the plain ones", plainSeen)
	}
}

// needsEncodingJSON says whether a reading holds what appendReadingsStored
// leaves to encoding/json, told another way than it does.
func needsEncodingJSON(readings []Reading) bool {
	for _, r := range readings {
		for _, s := range []string{r.Station, r.Sensor, r.Unit} {
			if q, _ := json.Marshal(s); string(q) != `"`+s+`"` || strings.ContainsFunc(s, func(c rune) bool { return c >= 0x7f }) {
				return true
			}
		}
		if y := r.Time.UTC().Year(); y < 0 || y > 9999 || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			return true
		}
	}
	return false
}
