package main

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them: the
// pipeline, its pools and clients must all be closed when run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startPipeline runs the real sensorhub pipeline in process: Redis stream,
// hub with the built-in types under threshold rules, Postgres sink with its
// outbox, and the forwarder to the events stream.
func startPipeline(t *testing.T, stream, eventsStream, rules string) {
	t.Helper()
	parsed, err := threshold.Parse(rules)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{
		DB: postgrestest.New(t).Pool, Redis: redistest.Options(t), Stream: stream, Events: true, EventsStream: eventsStream,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, threshold.New(parsed).WrapAll(handlers.Builtin())...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
}

func TestAlertsPrintsThresholdCrossingsOnce(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream, eventsStream := redistest.Name(t, "alerts_in"), redistest.Name(t, "alerts_events")
	startPipeline(t, stream, eventsStream, "temperature@roof>30/28")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out sensorhubtest.Buffer
	done := make(chan error, 1)
	env := map[string]string{"REDIS_URL": redistest.URL(), "SENSORHUB_EVENTS_STREAM": eventsStream}
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()

	// One message at a time, so that device time and commit order agree.
	for i, v := range []float64{25, 31, 29, 30.5, 27, 26} {
		ts := time.Date(2024, 12, 1, 12, i, 0, 0, time.UTC).Format(time.RFC3339)
		payload := `{"sensor":"temperature","station":"roof","value":` + strconv.FormatFloat(v, 'g', -1, 64) + `,"timestamp":"` + ts + `"}`
		if err := client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload}}).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A reading from another station crosses no rule of roof.
	client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload",
		`{"sensor":"temperature","station":"garden","value":35,"timestamp":"2024-12-01T12:00:00Z"}`}})

	want := []string{
		"ALERT roof temperature 31 Cel (rising, rule temperature@roof>30/28) at 2024-12-01T12:01:00Z",
		"CLEARED roof temperature 27 Cel (falling, rule temperature@roof>30/28) at 2024-12-01T12:04:00Z",
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), want[1]) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything extra would arrive now
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "ALERT") || strings.HasPrefix(line, "CLEARED") {
			alerts = append(alerts, line)
		}
	}
	if strings.Join(alerts, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s\nfull output:\n%s", strings.Join(alerts, "\n"), strings.Join(want, "\n"), out.String())
	}
}
