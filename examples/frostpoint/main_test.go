package main

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestFrostPointIsComputed sends a temperature and a humidity 20 s apart
// and waits for the frost point: −5 °C at 80 %RH has its frost point at
// −7.0 °C (over ice), below the dew point over water (−7.8 °C is the dew
// point's; the frost point lies between it and the temperature).
func TestFrostPointIsComputed(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream := redistest.Name(t, "frostpoint_in")
	env := map[string]string{"DATABASE_URL": db.URL, "REDIS_URL": redistest.URL(),
		"SENSORHUB_STREAM": stream, "SENSORHUB_EVENTS_STREAM": redistest.Name(t, "frostpoint_events")}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, out.String())
		}
	})

	base := time.Date(2024, 12, 1, 6, 0, 0, 0, time.UTC)
	for _, m := range []string{
		fmt.Sprintf(`{"sensor":"temperature","station":"field","value":-5,"timestamp":%q}`, base.Format(time.RFC3339)),
		fmt.Sprintf(`{"sensor":"humidity","station":"field","value":80,"timestamp":%q}`, base.Add(20*time.Second).Format(time.RFC3339)),
	} {
		if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", m}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var frost, dew float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := db.Pool.QueryRow(t.Context(), `SELECT f.value, d.value FROM readings f JOIN readings d USING (station, ts)
WHERE f.sensor = 'frost_point' AND f.derived AND d.sensor = 'dew_point' AND f.ts = $1`, base).Scan(&frost, &dew)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no frost point within 60 s: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if math.Abs(frost-(-7.0)) > 0.1 || !(dew < frost && frost < -5) {
		t.Errorf("frost point %.2f °C, dew point %.2f °C; want −7.0 °C, between the dew point and −5 °C", frost, dew)
	}
}
