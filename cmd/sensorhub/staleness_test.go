package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
)

func TestLoadStalenessConfig(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := (stalenessConfig{sweepInterval: 5 * time.Second,
		policy: staleness.Policy{After: 3, DefaultInterval: 5 * time.Minute, MinInterval: 10 * time.Second}}); cfg.staleness != want {
		t.Errorf("defaults = %+v, want %+v", cfg.staleness, want)
	}

	cfg, err = loadConfig(envOf(map[string]string{"SENSORHUB_STALENESS": "true", "SENSORHUB_STALE_AFTER": "2.5",
		"SENSORHUB_STALE_SWEEP_INTERVAL": "200ms", "SENSORHUB_STALE_DEFAULT_INTERVAL": "1s", "SENSORHUB_STALE_MIN_INTERVAL": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (stalenessConfig{enabled: true, sweepInterval: 200 * time.Millisecond,
		policy: staleness.Policy{After: 2.5, DefaultInterval: time.Second, MinInterval: 100 * time.Millisecond}}); cfg.staleness != want {
		t.Errorf("set = %+v, want %+v", cfg.staleness, want)
	}

	bad := map[string]string{"SENSORHUB_STALENESS": "maybe", "SENSORHUB_STALE_AFTER": "0.5",
		"SENSORHUB_STALE_SWEEP_INTERVAL": "0s", "SENSORHUB_STALE_DEFAULT_INTERVAL": "soon", "SENSORHUB_STALE_MIN_INTERVAL": "-1s"}
	_, err = loadConfig(envOf(bad))
	for name := range bad {
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

// TestStalenessTwoReplicas is the test issue 12 asks for: with two
// replicas of the service running on one database and stream, a sensor
// that stops is announced stale once, then recovered once when it reports
// again, on the events stream, and /metrics shows its state.
func TestStalenessTwoReplicas(t *testing.T) {
	t.Parallel()
	a := newTestEnv(t)
	for k, v := range map[string]string{
		"SENSORHUB_STALENESS":              "true",
		"SENSORHUB_STALE_AFTER":            "2",
		"SENSORHUB_STALE_DEFAULT_INTERVAL": "500ms",
		"SENSORHUB_STALE_SWEEP_INTERVAL":   "100ms",
	} {
		a.vars[k] = v
	}
	b := a.withOwnPort(t)
	b.vars["SENSORHUB_CONSUMER"] = "e2e-b"
	a.start(t, "run")
	b.start(t, "run")
	a.waitHealthy(t)
	b.waitHealthy(t)

	eventsStream := a.vars["SENSORHUB_EVENTS_STREAM"]
	announced := func() (stale, recovered []sensorhub.SensorStaleness) {
		for _, e := range a.events(t, eventsStream) {
			var p sensorhub.SensorStaleness
			switch e.Type {
			case sensorhub.EventSensorStale:
				_ = e.Decode(&p)
				stale = append(stale, p)
			case sensorhub.EventSensorRecovered:
				_ = e.Decode(&p)
				recovered = append(recovered, p)
			}
		}
		return stale, recovered
	}
	staleGauge := func(e *testEnv) (float64, bool) {
		_, samples := e.scrapeMetrics(t)
		v, ok := samples[`sensorhub_sensor_stale{sensor="temperature",station="roof"}`]
		return v, ok
	}

	a.xadd(t, `{"station": "roof", "sensor": "temperature", "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`)
	poll.Until(t, 60*time.Second, "sensor.stale on the events stream", func() bool { s, _ := announced(); return len(s) > 0 })
	poll.Until(t, 30*time.Second, "both replicas' /metrics show roof/temperature stale", func() bool {
		va, _ := staleGauge(a)
		vb, _ := staleGauge(b)
		return va == 1 && vb == 1
	})
	// Set by hand, as `station set --interval` does, so that the sensor
	// does not go stale again once back.
	if err := staleness.SetInterval(t.Context(), a.db.Pool, "roof", "temperature", time.Hour); err != nil {
		t.Fatal(err)
	}
	a.xadd(t, `{"station": "roof", "sensor": "temperature", "value": 15, "timestamp": "2024-12-01T12:01:00Z"}`)
	poll.Until(t, 60*time.Second, "sensor.recovered on the events stream", func() bool { _, r := announced(); return len(r) > 0 })
	poll.Until(t, 30*time.Second, "both replicas' /metrics show roof/temperature ok", func() bool {
		va, _ := staleGauge(a)
		vb, _ := staleGauge(b)
		return va == 0 && vb == 0 && a.rows(t, "") == 2
	})

	// Both replicas keep sweeping; nothing more may be announced.
	for i, e := range []*testEnv{a, b} {
		start := sweeps(t, e)
		poll.Until(t, 30*time.Second, fmt.Sprintf("replica %d sweeps five times more", i), func() bool { return sweeps(t, e) >= start+5 })
	}

	stale, recovered := announced()
	if len(stale) != 1 || len(recovered) != 1 {
		t.Fatalf("events: %d sensor.stale, %d sensor.recovered; want one each:\nstale %+v\nrecovered %+v", len(stale), len(recovered), stale, recovered)
	}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	if s := stale[0]; s.Station != "roof" || s.Sensor != "temperature" || !s.LastTS.Equal(at("2024-12-01T12:00:00Z")) ||
		s.ExpectedIntervalS != 0.5 || s.LastReceivedAt.IsZero() {
		t.Errorf("sensor.stale = %+v", s)
	}
	if r := recovered[0]; r.Station != "roof" || r.Sensor != "temperature" || !r.LastTS.Equal(at("2024-12-01T12:01:00Z")) ||
		r.ExpectedIntervalS != 3600 || !r.LastReceivedAt.After(stale[0].LastReceivedAt) {
		t.Errorf("sensor.recovered = %+v", r)
	}
}

// sweeps returns sensorhub_staleness_sweeps_total of the service.
func sweeps(t *testing.T, e *testEnv) float64 {
	t.Helper()
	_, samples := e.scrapeMetrics(t)
	return samples["sensorhub_staleness_sweeps_total"]
}
