// Package casetest runs the table tests of the built-in sensor types, so that
// each handler package keeps only its cases, in testdata/cases.json, and a
// test of a few lines:
//
//	func TestType(t *testing.T) {
//		t.Parallel()
//		casetest.Run(t, temperature.Type(), "testdata/cases.json")
//	}
//
// A case file is a JSON array of cases:
//
//	[
//	  {"name": "degF", "payload": {"sensor": "temperature", "value": 57.2, "unit": "degF", "timestamp": "2024-12-01T12:00:00Z"},
//	   "want": {"value": 14, "unit": "Cel"}},
//	  {"name": "above max", "payload": "{\"sensor\": \"temperature\", \"value\": 100.1, \"timestamp\": 1733054400}",
//	   "reason": "value_out_of_range"}
//	]
//
// payload is the message: a JSON object or array is sent as written, a JSON
// string is sent as its contents, byte for byte. Every case sets exactly one
// of want and reason. want is the single reading the message must store:
// its value in the canonical unit (compared within a relative 1e-9), its
// unit, and optionally its station and time (RFC 3339), which are checked
// only when given. reason is the poison reason code (sensorhub.ReasonOf)
// the message must be rejected with. Unknown fields are errors, so a typo in
// a case file cannot silently weaken a test.
package casetest

import (
	"encoding/json/jsontext"
	json "encoding/json/v2"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
)

// relTol bounds the relative error of a stored value. Conversions are one
// or two float64 operations, so they are exact to a few ulps, while the
// expectations in case files are written in decimal.
const relTol = 1e-9

// testCase is one entry of a case file.
type testCase struct {
	Name    string         `json:"name"`
	Payload jsontext.Value `json:"payload"`
	Want    *reading       `json:"want"`
	Reason  string         `json:"reason"`

	// message is Payload as sent to the hub.
	message string
}

// reading is what a case expects to be stored.
type reading struct {
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	Station string    `json:"station"`
	Time    time.Time `json:"time"`
}

// Run runs every case of file, a path relative to the calling test's
// package directory, as a parallel subtest named "<outcome>/<case name>",
// where outcome is "stored" or the expected reason code. Each case processes
// its payload through a fresh hub with only typ registered
// (sensorhubtest.Process). A malformed case file fails t before any case
// runs.
func Run(t *testing.T, typ sensorhub.SensorType, file string) {
	t.Helper()
	cases, err := load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		outcome := c.Reason
		if c.Want != nil {
			outcome = "stored"
		}
		t.Run(outcome+"/"+c.Name, func(t *testing.T) {
			t.Parallel()
			got, err := sensorhubtest.Process(t, c.message, typ)
			if c.Want == nil {
				if err == nil {
					t.Fatalf("stored %+v, want rejection with reason %q", got, c.Reason)
				}
				if reason := sensorhub.ReasonOf(err); reason != c.Reason {
					t.Fatalf("reason %q, want %q (error: %v)", reason, c.Reason, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected with reason %q: %v", sensorhub.ReasonOf(err), err)
			}
			if len(got.Readings) != 1 {
				t.Fatalf("stored %d readings %+v, want 1", len(got.Readings), got.Readings)
			}
			checkReading(t, typ.Name, got.Readings[0], *c.Want)
		})
	}
}

// checkReading reports every way r differs from want.
func checkReading(t *testing.T, sensor string, r sensorhub.Reading, want reading) {
	t.Helper()
	if r.Sensor != sensor {
		t.Errorf("sensor %q, want %q", r.Sensor, sensor)
	}
	if math.Abs(r.Value-want.Value) > relTol*math.Abs(want.Value) {
		t.Errorf("value %v, want %v", r.Value, want.Value)
	}
	if r.Unit != want.Unit {
		t.Errorf("unit %q, want %q", r.Unit, want.Unit)
	}
	if want.Station != "" && r.Station != want.Station {
		t.Errorf("station %q, want %q", r.Station, want.Station)
	}
	if !want.Time.IsZero() && !r.Time.Equal(want.Time) {
		t.Errorf("time %s, want %s", r.Time.Format(time.RFC3339Nano), want.Time.Format(time.RFC3339Nano))
	}
}

// load reads and checks a case file, reporting every malformed case at once.
func load(file string) ([]testCase, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var cases []testCase
	if err := json.Unmarshal(data, &cases, json.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", file)
	}
	var errs []error
	names := make(map[string]bool, len(cases))
	for i := range cases {
		c := &cases[i]
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: case %d: name is required", file, i))
		case names[c.Name]:
			errs = append(errs, fmt.Errorf("%s: case %d: duplicate name %q", file, i, c.Name))
		case strings.Contains(c.Name, "/"):
			// A slash would split the subtest name in -run patterns.
			errs = append(errs, fmt.Errorf("%s: case %q: name must not contain a slash", file, c.Name))
		}
		names[c.Name] = true
		if (c.Want == nil) == (c.Reason == "") {
			errs = append(errs, fmt.Errorf("%s: case %q: set exactly one of want and reason", file, c.Name))
		}
		if c.Want != nil && c.Want.Unit == "" {
			errs = append(errs, fmt.Errorf("%s: case %q: want.unit is required", file, c.Name))
		}
		switch c.Payload.Kind() {
		case 0:
			errs = append(errs, fmt.Errorf("%s: case %q: payload is required", file, c.Name))
		case '"':
			if err := json.Unmarshal(c.Payload, &c.message); err != nil {
				errs = append(errs, fmt.Errorf("%s: case %q: payload: %w", file, c.Name, err))
			}
		default:
			c.message = string(c.Payload)
		}
	}
	return cases, errors.Join(errs...)
}
