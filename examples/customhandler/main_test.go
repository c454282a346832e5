package main

import (
	"context"
	"io"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them: run
// must close every pool and client it opened before it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestCustomSensorTypeIsStoredAndValidated(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream := redistest.Name(t, "custom")
	env := map[string]string{"DATABASE_URL": db.URL, "REDIS_URL": redistest.URL(), "SENSORHUB_STREAM": stream}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, io.Discard) }()

	xadd := func(payload string) {
		t.Helper()
		if err := client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	xadd(`{"sensor":"soil_ph","value":6.5,"timestamp":"2024-12-01T12:00:00Z","station":"bed-1"}`)
	xadd(`{"sensor":"soil_ph","value":15,"timestamp":"2024-12-01T12:00:00Z","station":"bed-2"}`)

	// The two readings are handled concurrently: wait for both outcomes.
	deadline := time.Now().Add(10 * time.Second)
	var poisoned, stored int64
	for (poisoned == 0 || stored == 0) && time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		poisoned = client.XLen(ctx, stream+".poison").Val()
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&stored)
	}
	var station, unit string
	var value float64
	if err := db.Pool.QueryRow(ctx, `SELECT station, value, unit FROM readings WHERE sensor = 'soil_ph'`).Scan(&station, &value, &unit); err != nil {
		t.Fatalf("soil_ph reading not stored: %v", err)
	}
	if station != "bed-1" || value != 6.5 || unit != "pH" {
		t.Errorf("stored %s %v %s, want bed-1 6.5 pH", station, value, unit)
	}
	if poisoned != 1 {
		t.Fatalf("%d poisoned, want the out-of-range pH 15", poisoned)
	}
	reason := client.XRange(ctx, stream+".poison", "-", "+").Val()[0].Values["reason"]
	if reason != "value_out_of_range" {
		t.Errorf("poison reason %v, want value_out_of_range", reason)
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
}
