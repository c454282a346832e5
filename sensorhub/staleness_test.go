package sensorhub_test

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// TestNewSensorStalenessEvent: one transition of one series always has
// one UUID; another transition, type or series has another.
func TestNewSensorStalenessEvent(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CET", 3600)
	p := sensorhub.SensorStaleness{Station: "roof", Sensor: "temperature", LastTS: time.Date(2024, 12, 1, 13, 0, 0, 0, berlin),
		LastReceivedAt: time.Date(2024, 12, 1, 13, 0, 1, 0, berlin), ExpectedIntervalS: 60}
	at := time.Date(2024, 12, 1, 13, 3, 0, 0, berlin)
	e, err := sensorhub.NewSensorStalenessEvent(sensorhub.EventSensorStale, 1, at, p)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := sensorhub.NewSensorStalenessEvent(sensorhub.EventSensorStale, 1, at.Add(time.Hour), p)
	if again.UUID != e.UUID {
		t.Errorf("the same transition has UUIDs %s and %s", e.UUID, again.UUID)
	}
	other := p
	other.Station = "yard"
	for name, ev := range map[string]func() (sensorhub.Event, error){
		"next transition": func() (sensorhub.Event, error) {
			return sensorhub.NewSensorStalenessEvent(sensorhub.EventSensorStale, 3, at, p)
		},
		"other type": func() (sensorhub.Event, error) {
			return sensorhub.NewSensorStalenessEvent(sensorhub.EventSensorRecovered, 1, at, p)
		},
		"other series": func() (sensorhub.Event, error) {
			return sensorhub.NewSensorStalenessEvent(sensorhub.EventSensorStale, 1, at, other)
		},
	} {
		o, err := ev()
		if err != nil {
			t.Fatal(err)
		}
		if o.UUID == e.UUID {
			t.Errorf("%s: same UUID %s", name, e.UUID)
		}
	}
	if want := `{"station":"roof","sensor":"temperature","last_ts":"2024-12-01T12:00:00Z","last_received_at":"2024-12-01T12:00:01Z","expected_interval_s":60}`; string(e.Payload) != want {
		t.Errorf("payload %s, want %s (times in UTC)", e.Payload, want)
	}
	if e.Type != "sensor.stale" || e.Version != 1 || !e.Time.Equal(at) || e.Time.Location() != time.UTC {
		t.Errorf("event = %s v%d at %s", e.Type, e.Version, e.Time)
	}
}
