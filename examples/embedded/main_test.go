package main

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them: run
// must close every pool and client it opened before it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEmbeddedStoresReadings(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream := redistest.Name(t, "embedded")
	env := map[string]string{"DATABASE_URL": db.URL, "REDIS_URL": redistest.URL(), "SENSORHUB_STREAM": stream}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()

	for _, p := range []string{
		`{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`,
		`{"sensor": "wind_speed", "value": 36, "unit": "km/h", "timestamp": "2024-12-01T12:00:00Z", "station": "mast"}`,
	} {
		if err := client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", p}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var n int
	for n < 2 && time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	if n != 2 {
		t.Fatalf("%d rows stored, want 2\n%s", n, out.String())
	}
	var speed float64
	if err := db.Pool.QueryRow(ctx, `SELECT value FROM readings WHERE sensor = 'wind_speed' AND unit = 'm/s'`).Scan(&speed); err != nil || speed != 10 {
		t.Fatalf("wind speed = %v (%v), want 10 m/s", speed, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(out.String(), "2 stored") {
		t.Errorf("output does not report 2 stored:\n%s", out.String())
	}
}
