package sensorhub_test

import (
	"bytes"
	json "encoding/json/v2"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin without relying on the host's zoneinfo

	"github.com/sensorhub/sensorhub/sensorhub"
)

// fixedNow is the server clock of every decoder in these tests, so that the
// time window is reproducible: device times up to 2025-01-01T00:10:00Z pass.
var fixedNow = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

// decodeReasons are the reason codes the Decoder may return. Each one must be
// covered by at least one case in testdata/decode.
var decodeReasons = []string{
	sensorhub.ReasonTooLarge,
	sensorhub.ReasonInvalidUTF8,
	sensorhub.ReasonNULByte,
	sensorhub.ReasonInvalidJSON,
	sensorhub.ReasonDuplicateKey,
	sensorhub.ReasonNotObject,
	sensorhub.ReasonEmptyBatch,
	sensorhub.ReasonMissingField,
	sensorhub.ReasonInvalidField,
	sensorhub.ReasonInvalidSensor,
	sensorhub.ReasonInvalidStation,
	sensorhub.ReasonInvalidTimestamp,
	sensorhub.ReasonTimestampOutOfWindow,
	sensorhub.ReasonAmbiguousLocalTime,
	sensorhub.ReasonValueNotFinite,
}

// decodeCase is one case of testdata/decode/*.json.
//
// The payload is given by exactly one of payload (a string, so that invalid
// JSON is easy to write), payload_base64 (for bytes that are not UTF-8 or hold
// NUL) or payload_repeat (segments concatenated, each repeated times times,
// for oversized payloads); pad_to then appends spaces up to that many bytes.
// location names the zone of zone-less timestamps (default UTC).
//
// A case expects either want, the decoded inputs, or reason, the
// *InputError's reason code, with index (default -1, a single object or the
// message as a whole) and field (checked only when given).
type decodeCase struct {
	Name          string          `json:"name"`
	Payload       *string         `json:"payload"`
	PayloadBase64 []byte          `json:"payload_base64"`
	PayloadRepeat []repeatSegment `json:"payload_repeat"`
	PadTo         int             `json:"pad_to"`
	Location      string          `json:"location"`
	Want          []wantInput     `json:"want"`
	Reason        string          `json:"reason"`
	Index         *int            `json:"index"`
	Field         *string         `json:"field"`

	file    string // base name of the file holding the case
	payload []byte
	loc     *time.Location
}

type repeatSegment struct {
	Text  string `json:"text"`
	Times int    `json:"times"` // default 1
}

type wantInput struct {
	Station string  `json:"station"`
	Sensor  string  `json:"sensor"`
	Time    string  `json:"time"` // RFC 3339 in UTC
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	ID      string  `json:"id"`
}

func (c *decodeCase) outcome() string {
	if c.Reason != "" {
		return c.Reason
	}
	return "ok"
}

// prepare checks the case is well-formed and builds its payload.
func (c *decodeCase) prepare() error {
	var given int
	for _, set := range []bool{c.Payload != nil, c.PayloadBase64 != nil, c.PayloadRepeat != nil} {
		if set {
			given++
		}
	}
	switch {
	case c.Name == "":
		return errors.New("case without a name")
	case given != 1:
		return errors.New("give exactly one of payload, payload_base64 and payload_repeat")
	case (c.Reason == "") == (c.Want == nil):
		return errors.New("give exactly one of want and reason")
	case c.Want != nil && len(c.Want) == 0:
		return errors.New("want must list at least one input")
	case c.Reason == "" && (c.Index != nil || c.Field != nil):
		return errors.New("index and field go with reason")
	}
	switch {
	case c.Payload != nil:
		c.payload = []byte(*c.Payload)
	case c.PayloadBase64 != nil:
		c.payload = c.PayloadBase64
	default:
		var b bytes.Buffer
		for _, s := range c.PayloadRepeat {
			times := s.Times
			if times == 0 {
				times = 1
			}
			b.WriteString(strings.Repeat(s.Text, times))
		}
		c.payload = b.Bytes()
	}
	if c.PadTo > 0 {
		if len(c.payload) > c.PadTo {
			return errors.New("payload is longer than pad_to")
		}
		c.payload = append(c.payload, bytes.Repeat([]byte{' '}, c.PadTo-len(c.payload))...)
	}
	c.loc = time.UTC
	if c.Location != "" {
		var err error
		if c.loc, err = time.LoadLocation(c.Location); err != nil {
			return err
		}
	}
	for _, w := range c.Want {
		if _, err := time.Parse(time.RFC3339Nano, w.Time); err != nil || !strings.HasSuffix(w.Time, "Z") {
			return errors.New("want time must be RFC 3339 in UTC, got " + w.Time)
		}
	}
	return nil
}

func loadDecodeCases(t *testing.T) []*decodeCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "decode", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no decode cases in testdata/decode: %v", err)
	}
	var all []*decodeCase
	names := make(map[string]string)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cases []*decodeCase
		// Unknown members are typos in a case: reject them.
		if err := json.Unmarshal(data, &cases, json.RejectUnknownMembers(true)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, c := range cases {
			c.file = strings.TrimSuffix(filepath.Base(file), ".json")
			if err := c.prepare(); err != nil {
				t.Fatalf("%s: case %q: %v", file, c.Name, err)
			}
			if other, ok := names[c.Name]; ok {
				t.Fatalf("%s: case %q is also in %s", file, c.Name, other)
			}
			names[c.Name] = file
			all = append(all, c)
		}
	}
	return all
}

func newTestDecoder(t testing.TB, loc *time.Location) *sensorhub.Decoder {
	t.Helper()
	d, err := sensorhub.NewDecoder(sensorhub.DecoderConfig{Now: clock, Location: loc})
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	return d
}

// TestDecode runs the table of testdata/decode/*.json. Cases run in parallel
// and share one decoder per location, which also checks that a Decoder is
// safe for concurrent use (under -race).
func TestDecode(t *testing.T) {
	t.Parallel()
	cases := loadDecodeCases(t)

	covered := make(map[string]bool)
	for _, c := range cases {
		covered[c.Reason] = true
	}
	for _, r := range decodeReasons {
		if !covered[r] {
			t.Errorf("no case in testdata/decode expects reason %q", r)
		}
	}

	decoders := make(map[*time.Location]*sensorhub.Decoder)
	for _, c := range cases {
		if decoders[c.loc] == nil {
			decoders[c.loc] = newTestDecoder(t, c.loc)
		}
	}
	byFile := make(map[string][]*decodeCase)
	for _, c := range cases {
		byFile[c.file] = append(byFile[c.file], c)
	}
	for file, cases := range byFile {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.Name+"=>"+c.outcome(), func(t *testing.T) {
					t.Parallel()
					got, err := decoders[c.loc].Decode(c.payload)
					if c.Reason != "" {
						checkInputError(t, err, c)
						if got != nil {
							t.Errorf("Decode returned %d inputs beside the error", len(got))
						}
						return
					}
					if err != nil {
						t.Fatalf("Decode: unexpected error: %v", err)
					}
					checkInputs(t, got, c.Want)
				})
			}
		})
	}
}

func checkInputError(t *testing.T, err error, c *decodeCase) {
	t.Helper()
	if err == nil {
		t.Fatalf("Decode succeeded, want reason %q", c.Reason)
	}
	var in *sensorhub.InputError
	if !errors.As(err, &in) {
		t.Fatalf("Decode error %v (%T) is not an *InputError", err, err)
	}
	wantIndex := -1
	if c.Index != nil {
		wantIndex = *c.Index
	}
	if in.Reason != c.Reason || in.Index != wantIndex {
		t.Errorf("got reason %q index %d, want %q index %d; error: %.300v", in.Reason, in.Index, c.Reason, wantIndex, err)
	}
	if c.Field != nil && in.Field != *c.Field {
		t.Errorf("got field %q, want %q; error: %.300v", in.Field, *c.Field, err)
	}
	if !sensorhub.IsPermanent(err) || sensorhub.ReasonOf(err) != c.Reason {
		t.Errorf("IsPermanent = %v, ReasonOf = %q; want true, %q", sensorhub.IsPermanent(err), sensorhub.ReasonOf(err), c.Reason)
	}
	if in.Err == nil {
		t.Error("InputError.Err is nil: the poison queue gets no human text")
	}
}

func checkInputs(t *testing.T, got []sensorhub.Input, want []wantInput) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d inputs, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		w := want[i]
		gotTime := g.Time.UTC().Format(time.RFC3339Nano)
		if g.Station != w.Station || g.Sensor != w.Sensor || gotTime != w.Time || g.Value != w.Value || g.Unit != w.Unit || g.ID != w.ID {
			t.Errorf("input %d:\n got  {station %q sensor %q time %s value %v unit %q id %q}\n want {station %q sensor %q time %s value %v unit %q id %q}",
				i, g.Station, g.Sensor, gotTime, g.Value, g.Unit, g.ID, w.Station, w.Sensor, w.Time, w.Value, w.Unit, w.ID)
		}
	}
}

// TestDecoderConfig covers the configurable bounds, which the table keeps at
// their defaults.
func TestDecoderConfig(t *testing.T) {
	t.Parallel()
	const legacy = `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`

	t.Run("validate reports every problem", func(t *testing.T) {
		t.Parallel()
		cfg := sensorhub.DecoderConfig{MaxMessageBytes: -1, MaxFuture: -time.Second, DefaultStation: "bad station"}
		err := cfg.Validate()
		if err == nil {
			t.Fatal("Validate accepted a bad config")
		}
		for _, want := range []string{"max message bytes", "max future", "default station"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Validate error %q does not mention %q", err, want)
			}
		}
		if _, err := sensorhub.NewDecoder(cfg); err == nil {
			t.Error("NewDecoder accepted a bad config")
		}
	})

	t.Run("zero config uses defaults", func(t *testing.T) {
		t.Parallel()
		d, err := sensorhub.NewDecoder(sensorhub.DecoderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode([]byte(legacy))
		if err != nil {
			t.Fatal(err)
		}
		checkInputs(t, got, []wantInput{{Station: sensorhub.DefaultStation, Sensor: "temperature", Time: "2024-12-01T12:00:00Z", Value: 14}})
		if _, err := d.Decode(bytes.Repeat([]byte(" "), sensorhub.DefaultMaxMessageBytes+1)); sensorhub.ReasonOf(err) != sensorhub.ReasonTooLarge {
			t.Errorf("default limit: got %v, want %s", err, sensorhub.ReasonTooLarge)
		}
	})

	for _, tc := range []struct {
		name    string
		cfg     sensorhub.DecoderConfig
		payload string
		want    string // reason, or "" for success
		station string
	}{
		{name: "custom default station", cfg: sensorhub.DecoderConfig{DefaultStation: "lab:1"}, payload: legacy, station: "lab:1"},
		{name: "custom size limit accepts", cfg: sensorhub.DecoderConfig{MaxMessageBytes: len(legacy)}, payload: legacy},
		{name: "custom size limit rejects", cfg: sensorhub.DecoderConfig{MaxMessageBytes: len(legacy) - 1}, payload: legacy, want: sensorhub.ReasonTooLarge},
		{name: "custom min time rejects", cfg: sensorhub.DecoderConfig{MinTime: time.Date(2024, 12, 1, 12, 0, 1, 0, time.UTC)}, payload: legacy, want: sensorhub.ReasonTimestampOutOfWindow},
		{name: "custom min time accepts", cfg: sensorhub.DecoderConfig{MinTime: time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)}, payload: legacy},
		{name: "min time before 1970 accepts", cfg: sensorhub.DecoderConfig{MinTime: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
			payload: `{"sensor": "temperature", "value": 14, "timestamp": "1950-06-01 00:00:00"}`},
		{name: "custom max future accepts", cfg: sensorhub.DecoderConfig{MaxFuture: time.Hour},
			payload: `{"sensor": "temperature", "value": 14, "timestamp": "2025-01-01T00:59:00Z"}`},
		{name: "custom max future rejects", cfg: sensorhub.DecoderConfig{MaxFuture: time.Minute},
			payload: `{"sensor": "temperature", "value": 14, "timestamp": "2025-01-01T00:02:00Z"}`, want: sensorhub.ReasonTimestampOutOfWindow},
	} {
		outcome := tc.want
		if outcome == "" {
			outcome = "ok"
		}
		t.Run(tc.name+"=>"+outcome, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Now = clock
			d, err := sensorhub.NewDecoder(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Decode([]byte(tc.payload))
			if tc.want != "" {
				if sensorhub.ReasonOf(err) != tc.want {
					t.Fatalf("got %v, want reason %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			station := tc.station
			if station == "" {
				station = sensorhub.DefaultStation
			}
			if len(got) != 1 || got[0].Station != station {
				t.Errorf("got %+v, want one input from station %q", got, station)
			}
		})
	}
}

// BenchmarkDecode measures the decoder on the shapes producers send most:
// the legacy zone-less time, RFC 3339, Unix milliseconds, and a zone-less
// time read in a zone with DST.
func BenchmarkDecode(b *testing.B) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		loc     *time.Location
		payload string
	}{
		{"legacy", time.UTC, `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`},
		{"rfc3339", time.UTC, `{"sensor": "temperature", "value": 14.5, "timestamp": "2024-12-01T13:00:00.123+01:00", "station": "roof"}`},
		{"unix_millis", time.UTC, `{"sensor": "temperature", "value": 14.5, "timestamp": 1733054400123}`},
		{"zoneless_berlin", berlin, `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00.250"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := newTestDecoder(b, bc.loc)
			payload := []byte(bc.payload)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeZonelessTimeNamesOneInstant checks wall clocks of 2024, every
// quarter hour around each clock change and every seven hours in between,
// in zones with whole-hour, half-hour and southern-hemisphere changes,
// against a brute-force count of the instants at which the zone's clocks
// read that wall clock: exactly one is decoded to that instant, none or two
// are refused with ReasonAmbiguousLocalTime.
func TestDecodeZonelessTimeNamesOneInstant(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"Europe/Berlin", "Australia/Lord_Howe", "Australia/Sydney", "America/Santiago"} {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			year := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			offsets := make(map[int]bool) // every offset the zone uses around 2024
			var walls []time.Time
			for at := year.AddDate(0, 0, -2); at.Before(year.AddDate(1, 0, 2)); at = at.Add(7 * time.Hour) {
				walls = append(walls, wallClock(at.In(loc)))
			}
			for at := year; at.Year() == 2024; {
				_, end := at.In(loc).ZoneBounds()
				_, off := at.In(loc).Zone()
				offsets[off] = true
				if end.IsZero() || end.Year() > 2024 {
					break
				}
				for wall, last := wallClock(end.Add(-3*time.Hour).In(loc)), wallClock(end.Add(3*time.Hour).In(loc)); !wall.After(last); wall = wall.Add(15 * time.Minute) {
					walls = append(walls, wall)
				}
				at = end
			}
			d, err := sensorhub.NewDecoder(sensorhub.DecoderConfig{Location: loc, Now: func() time.Time { return year.AddDate(2, 0, 0) }})
			if err != nil {
				t.Fatal(err)
			}
			var refused int
			for _, wall := range walls {
				text := wall.Format(time.DateTime)
				var instants []time.Time
				for off := range offsets {
					at := wall.Add(-time.Duration(off) * time.Second)
					if wallClock(at.In(loc)).Equal(wall) {
						instants = append(instants, at)
					}
				}
				got, err := d.Decode([]byte(`{"sensor": "temperature", "value": 14, "timestamp": "` + text + `"}`))
				switch {
				case len(instants) == 1 && (err != nil || !got[0].Time.Equal(instants[0])):
					t.Errorf("%s: got %v, %v; want %s", text, got, err, instants[0].UTC())
				case len(instants) != 1 && sensorhub.ReasonOf(err) != sensorhub.ReasonAmbiguousLocalTime:
					t.Errorf("%s names %d instants %v: got %v, %v; want reason %s", text, len(instants), instants, got, err, sensorhub.ReasonAmbiguousLocalTime)
				case len(instants) != 1:
					refused++
				}
			}
			if refused == 0 {
				t.Errorf("no wall clock refused in %s: the zone has no clock change in 2024 to test", zone)
			}
		})
	}
}

// wallClock returns t's date and time of day as read in its location, as
// the same fields in UTC.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
