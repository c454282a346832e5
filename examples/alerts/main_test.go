package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/alarms"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them: the
// pipeline, its pools and clients must all be closed when run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startPipeline runs the real sensorhub pipeline in process: Redis stream,
// hub with the built-in types, Postgres sink with its outbox and the
// threshold rules (stored in the database) as a processor, and the
// forwarder to the events stream. It returns the pipeline's database.
func startPipeline(t *testing.T, stream, eventsStream, rules string) *postgrestest.DB {
	t.Helper()
	parsed, err := threshold.Parse(rules)
	if err != nil {
		t.Fatal(err)
	}
	db := postgrestest.New(t)
	if _, err := alarms.SeedRules(t.Context(), db.Pool, parsed); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{
		DB: db.Pool, Redis: redistest.Options(t), Stream: stream, Events: true, EventsStream: eventsStream,
		Processors: []postgres.Processor{alarms.New(alarms.Config{})},
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, handlers.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return db
}

// startAlerts runs the example's consumer on eventsStream until the test
// ends, and returns its output.
func startAlerts(t *testing.T, eventsStream string) *syncbuf.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	env := map[string]string{"REDIS_URL": redistest.URL(), "SENSORHUB_EVENTS_STREAM": eventsStream}
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return &out
}

func TestAlertsPrintsThresholdCrossingsOnce(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream, eventsStream := redistest.Name(t, "alerts_in"), redistest.Name(t, "alerts_events")
	startPipeline(t, stream, eventsStream, "temperature@roof>30/28")

	out := startAlerts(t, eventsStream)
	ctx := t.Context()

	// One message a minute of device time: each releases the one before to
	// the threshold rule, once the 10 s reorder window has passed.
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

// TestAlertsReadsEveryEventOfALargeCommit commits 5,000 readings in one
// transaction: the readings.stored events that list them each fit the
// field bound of the example's subscriber (64 KiB by default), so the
// consumer reads every one of them and poisons none, and together they list
// every reading once.
func TestAlertsReadsEveryEventOfALargeCommit(t *testing.T) {
	t.Parallel()
	const n = 5000
	client := redistest.Client(t)
	stream, eventsStream := redistest.Name(t, "alerts_in"), redistest.Name(t, "alerts_events")
	db := startPipeline(t, stream, eventsStream, "temperature@roof>30/28")
	startAlerts(t, eventsStream)
	sink, err := postgres.New(postgres.Config{DB: db.Pool})
	if err != nil {
		t.Fatal(err)
	}

	base := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	readings := make([]sensorhub.Reading, n)
	for i := range readings {
		readings[i] = sensorhub.Reading{Station: "station-" + strconv.Itoa(i%10), Sensor: "temperature",
			Time: base.Add(time.Duration(i) * time.Second), Value: 20, Unit: "Cel"}
	}
	if res, err := sink.Write(t.Context(), sensorhub.Batch{Readings: readings}); err != nil || res.Stored != n {
		t.Fatalf("Write = %+v, %v; want %d stored", res, err, n)
	}

	wantEvents := (n + sensorhub.MaxReadingsPerEvent - 1) / sensorhub.MaxReadingsPerEvent
	var lastState string
	deadline := time.Now().Add(60 * time.Second)
	for {
		length := client.XLen(t.Context(), eventsStream).Val()
		groups, _ := client.XInfoGroups(t.Context(), eventsStream).Result()
		var read, pending int64
		for _, g := range groups {
			if g.Name == "alerts" {
				read, pending = g.EntriesRead, g.Pending
			}
		}
		lastState = fmt.Sprintf("%d events on the stream, %d read by the alerts group, %d pending", length, read, pending)
		if length >= int64(wantEvents) && read == length && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer did not read every event within 60 s: %s", lastState)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if poisoned := client.XRange(t.Context(), eventsStream+sensorhub.PoisonSuffix, "-", "+").Val(); len(poisoned) != 0 {
		t.Fatalf("the consumer poisoned %d events, e.g. %v", len(poisoned), poisoned[0].Values["reason"])
	}

	listed := make(map[time.Time]int)
	var chunks int
	for _, e := range redistest.Events(t, client, eventsStream) {
		var p sensorhub.ReadingsStored
		if e.Type != sensorhub.EventReadingsStored {
			continue
		}
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		chunks++
		for _, r := range p.Readings {
			listed[r.Time]++
		}
	}
	if chunks != wantEvents || len(listed) != n {
		t.Errorf("%d readings.stored events listing %d distinct readings; want %d events listing %d", chunks, len(listed), wantEvents, n)
	}
	for _, r := range readings {
		if listed[r.Time] != 1 {
			t.Fatalf("reading at %s listed %d times, want once", r.Time, listed[r.Time])
		}
	}
}
