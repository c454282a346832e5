package staleness_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
)

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	if err := (staleness.Policy{}).Validate(); err != nil {
		t.Fatalf("zero Policy: %v", err)
	}
	err := staleness.Policy{After: 0.5, DefaultInterval: -time.Second, MinInterval: -time.Second}.Validate()
	for _, want := range []string{"After", "DefaultInterval", "MinInterval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %s", err, want)
		}
	}
	if err := (staleness.Policy{After: math.NaN()}).Validate(); err == nil {
		t.Error("After NaN accepted")
	}
	if _, err := staleness.NewSweeper(staleness.Config{}); err == nil || !strings.Contains(err.Error(), "Config.DB") {
		t.Errorf("NewSweeper(Config{}) = %v, want an error naming Config.DB", err)
	}
}

func TestParseInterval(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]staleness.Interval{
		"temperature=5m":   {Sensor: "temperature", Duration: 5 * time.Minute},
		"wind_speed=1h30m": {Sensor: "wind_speed", Duration: 90 * time.Minute},
		"rain=1s":          {Sensor: "rain", Duration: time.Second},
		"rain=":            {Sensor: "rain"}, // clear
	} {
		got, err := staleness.ParseInterval(in)
		if err != nil || got != want {
			t.Errorf("ParseInterval(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"temperature":     "SENSOR=DURATION",
		"=5m":             "sensor",
		"Temperature=5m":  "sensor",
		"temperature=5":   "duration",
		"temperature=-5m": "duration",
		"temperature=0s":  "duration",
		"temperature=1us": "duration",
		"Bad=x":           "sensor", // both reported
	} {
		_, err := staleness.ParseInterval(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseInterval(%q) = %v, want an error about %s", in, err, want)
		}
	}
	if _, err := staleness.ParseInterval("Bad=x"); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("ParseInterval(%q) = %v, want both problems named", "Bad=x", err)
	}
}
