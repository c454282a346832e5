package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them: run must close
// every pool and client it opened before it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestQuickstartMigratesStoresAndEmits runs the program against a schema
// that was never migrated: it migrates it, stores a leaf_wetness reading
// and forwards its leaf.wet event, whose UUID the reading determines.
func TestQuickstartMigratesStoresAndEmits(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	client := redistest.Client(t)
	stream, events := redistest.Name(t, "quickstart"), redistest.Name(t, "quickstart_events")
	env := map[string]string{"DATABASE_URL": db.URL, "REDIS_URL": redistest.URL(), "SENSORHUB_STREAM": stream, "SENSORHUB_EVENTS_STREAM": events}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }) }()

	const payload = `{"sensor":"leaf_wetness","value":80,"timestamp":"2024-12-01T12:00:00Z","station":"vineyard"}`
	if err := client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload}}).Err(); err != nil {
		t.Fatal(err)
	}
	var leafWet []sensorhub.Event
	deadline := time.Now().Add(20 * time.Second)
	for len(leafWet) == 0 && time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		for _, entry := range client.XRange(ctx, events, "-", "+").Val() {
			var e sensorhub.Event
			if err := json.Unmarshal([]byte(entry.Values["payload"].(string)), &e); err != nil {
				t.Fatalf("event entry %v: %v", entry.Values, err)
			}
			if e.Type == "leaf.wet" {
				leafWet = append(leafWet, e)
			}
		}
	}
	stored := sensorhub.Reading{Station: "vineyard", Sensor: "leaf_wetness", Time: time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC), Value: 80, Unit: "%"}
	want, err := sensorhub.NewReadingEvent(stored, "leaf.wet", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(leafWet) != 1 || leafWet[0].UUID != want.UUID || string(leafWet[0].Payload) != `{"station":"vineyard","wetness":80}` {
		t.Fatalf("leaf.wet events %+v, want one with UUID %s", leafWet, want.UUID)
	}
	var value float64
	var unit string
	if err := db.Pool.QueryRow(ctx, `SELECT value, unit FROM readings WHERE station = 'vineyard' AND sensor = 'leaf_wetness'`).Scan(&value, &unit); err != nil || value != 80 || unit != "%" {
		t.Fatalf("stored %v %s (%v), want 80 %%", value, unit, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
