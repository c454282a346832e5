package sensorhub_test

import (
	"bytes"
	json "encoding/json/v2"
	"errors"
	"flag"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// The name rules of DESIGN.md §2, restated here so that the decoder is held
// to the contract rather than to its own patterns.
var (
	sensorNameRule  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	stationNameRule = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
)

// FuzzDecode checks the decoder's properties on arbitrary bytes: it never
// panics; it fails only with an *InputError carrying a known reason; what it
// accepts obeys the message contract; and it is deterministic and
// round-trips. Seeds: the f.Add calls below plus testdata/fuzz/FuzzDecode,
// between them every shape TestBadInput (cmd/sensorhub) sends.
//
//	go test -run XXX -fuzz FuzzDecode -fuzztime 60s ./sensorhub/
//
// The fuzzer minimises each new input it finds for up to -fuzzminimizetime
// (60 s), and a few hundred bytes of one can take that long: add
// -fuzzminimizetime 2s to spend the time fuzzing.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`,
		`[{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}, {"sensor": "humidity", "value": 81.5, "timestamp": 1733054400123, "station": "roof", "unit": "%"}]`,
		`{"sensor": "wind_speed", "value": -0.5e1, "timestamp": "2024-12-01T12:00:00.123+01:00", "station": "ws-1.a:b_c", "id": "x"}`,
		`{"sensor": "temperature", "value": "hot", "timestamp": 1733054400.5}`,
		`{"sensor": "temperature", "value": "-14.5e0", "timestamp": "2024-12-01 13:00:00.5+01:00"}`,
		`{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 13:00:00.123 +0100 CET m=+0.5"}`,
		`{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01T13:00:30+01:00:30"}`,
		`{"sensor": "temperature", "value": 14, "value": 15, "timestamp": "2024-12-01 12:00:00"}`,
		`{"sensor": "temp\u0000", "value": 1e400, "timestamp": "2024-12-31 23:59:60"}`,
		`[{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}, null, 42]`,
		`[[[[[[[[[[`,
		"not json",
		"",
		"\xff\x00",
	} {
		f.Add([]byte(seed))
	}
	// Shapes too large to keep in testdata: nesting at and past the
	// parser's depth limit of 10,000, names of 10,000 characters, and
	// payloads at and one byte past the size limit. Every go test run
	// checks them; a -fuzz run leaves them out, because the fuzzer
	// minimises each new input it finds for up to -fuzzminimizetime (60 s)
	// and a mutant of one of these, at up to 10 ms a run, took the whole
	// minute. The smaller deep seed in testdata keeps nesting among the
	// shapes it mutates.
	reading := `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"`
	large := []string{
		strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000),
		strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001),
		strings.Repeat(`{"a":`, 10_000) + "1" + strings.Repeat("}", 10_000),
		reading + `, "meta": ` + strings.Repeat("[", 9_999) + strings.Repeat("]", 9_999) + "}",
		`{"sensor": "` + strings.Repeat("s", 10_000) + `", "value": 14, "timestamp": "2024-12-01 12:00:00"}`,
		reading + `, "station": "` + strings.Repeat("S", 10_000) + `"}`,
		reading + "}" + strings.Repeat(" ", sensorhub.DefaultMaxMessageBytes-len(reading)-1),
		reading + "}" + strings.Repeat(" ", sensorhub.DefaultMaxMessageBytes-len(reading)),
	}
	if fuzzing := flag.Lookup("test.fuzz"); fuzzing == nil || fuzzing.Value.String() == "" {
		for _, seed := range large {
			f.Add([]byte(seed))
		}
	}
	decoder, err := sensorhub.NewDecoder(sensorhub.DecoderConfig{Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	// Re-encoding can make a payload larger (a default station, Unix times as
	// RFC 3339), so the round trip gets a decoder without the size limit.
	roundTrip, err := sensorhub.NewDecoder(sensorhub.DecoderConfig{Now: clock, MaxMessageBytes: math.MaxInt})
	if err != nil {
		f.Fatal(err)
	}
	known := make(map[string]bool)
	for _, r := range decodeReasons {
		known[r] = true
	}
	earliest, latest := sensorhub.DefaultMinTime, fixedNow.Add(sensorhub.DefaultMaxFuture)

	f.Fuzz(func(t *testing.T, payload []byte) {
		original := bytes.Clone(payload)
		inputs, err := decoder.Decode(payload)
		if !bytes.Equal(payload, original) {
			t.Fatal("Decode modified its input")
		}
		again, errAgain := decoder.Decode(payload)
		if (err == nil) != (errAgain == nil) || !slices.EqualFunc(inputs, again, sameInput) {
			t.Fatalf("Decode is not deterministic: %v / %v", err, errAgain)
		}
		if err != nil {
			var in *sensorhub.InputError
			if !errors.As(err, &in) {
				t.Fatalf("error %v (%T) is not an *InputError", err, err)
			}
			if !known[in.Reason] {
				t.Fatalf("unknown reason %q: %v", in.Reason, err)
			}
			if errAgain.Error() != err.Error() {
				t.Fatalf("Decode is not deterministic: %v / %v", err, errAgain)
			}
			if in.Index < -1 {
				t.Fatalf("index %d: %v", in.Index, err)
			}
			if in.Index >= 0 && bytes.TrimLeft(payload, " \t\r\n")[0] != '[' {
				t.Fatalf("index %d for a message that is no batch: %v", in.Index, err)
			}
			if !sensorhub.IsPermanent(err) || sensorhub.ReasonOf(err) != in.Reason {
				t.Fatalf("IsPermanent = %v, ReasonOf = %q for %v", sensorhub.IsPermanent(err), sensorhub.ReasonOf(err), err)
			}
			if inputs != nil {
				t.Fatalf("%d inputs beside error %v", len(inputs), err)
			}
			return
		}

		if len(inputs) == 0 {
			t.Fatal("success without inputs")
		}
		if len(payload) > sensorhub.DefaultMaxMessageBytes || !utf8.Valid(payload) || bytes.IndexByte(payload, 0) >= 0 {
			t.Fatal("accepted a payload that fails the raw checks")
		}
		for i, in := range inputs {
			switch {
			case !sensorNameRule.MatchString(in.Sensor):
				t.Fatalf("input %d: sensor %q breaks the name rule", i, in.Sensor)
			case !stationNameRule.MatchString(in.Station):
				t.Fatalf("input %d: station %q breaks the name rule", i, in.Station)
			case math.IsNaN(in.Value) || math.IsInf(in.Value, 0):
				t.Fatalf("input %d: value %v is not finite", i, in.Value)
			case in.Time.Before(earliest) || in.Time.After(latest):
				t.Fatalf("input %d: time %s is outside [%s, %s]", i, in.Time, earliest, latest)
			case utf8.RuneCountInString(in.Unit) > 32 || utf8.RuneCountInString(in.ID) > 256:
				t.Fatalf("input %d: unit %q or id %q too long", i, in.Unit, in.ID)
			}
		}

		// What was accepted, sent again in the canonical form, decodes to
		// the same inputs.
		type wire struct {
			Sensor    string  `json:"sensor"`
			Value     float64 `json:"value"`
			Timestamp string  `json:"timestamp"`
			Station   string  `json:"station"`
			Unit      string  `json:"unit,omitempty"`
			ID        string  `json:"id,omitempty"`
		}
		batch := make([]wire, len(inputs))
		for i, in := range inputs {
			batch[i] = wire{in.Sensor, in.Value, in.Time.Format(time.RFC3339Nano), in.Station, in.Unit, in.ID}
		}
		encoded, err := json.Marshal(batch)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		decoded, err := roundTrip.Decode(encoded)
		if err != nil {
			t.Fatalf("round trip of %s: %v", encoded, err)
		}
		if !slices.EqualFunc(inputs, decoded, sameInput) {
			t.Fatalf("round trip changed the inputs:\n got  %+v\n want %+v", decoded, inputs)
		}
	})
}

func sameInput(a, b sensorhub.Input) bool {
	return a.Station == b.Station && a.Sensor == b.Sensor && a.Time.Equal(b.Time) &&
		a.Value == b.Value && a.Unit == b.Unit && a.ID == b.ID
}
