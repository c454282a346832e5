package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/handlers/temperature"
	"github.com/sensorhub/sensorhub/migrations"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
	"github.com/sensorhub/sensorhub/sinks/postgres/stations"
)

// TestMain fails the tests when a goroutine outlives them: a pipeline that
// failed to start must have closed what it opened.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestStartRefusesUnmigratedDatabase checks that a database that was never
// migrated stops start-up with an error naming the missing migrations,
// instead of a service that retries "relation does not exist" forever.
func TestStartRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	p, err := pipeline.New(pipeline.Config{DB: db.Pool, Redis: redistest.Options(t), Stream: redistest.Name(t, "unmigrated"), Events: true,
		Logger: slog.New(slog.DiscardHandler)}, temperature.Type())
	if err != nil {
		t.Fatal(err)
	}
	// Without the check, Run would start and block until ctx ends.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if !errors.Is(err, migrations.ErrNotMigrated) || !strings.Contains(err.Error(), "0001_readings.sql") {
		t.Fatalf("Run = %v, want ErrNotMigrated naming 0001_readings.sql", err)
	}
}

// TestEventsOffPoisonsHandlerEvents checks that with events off a handler's
// event is never dropped silently: its message goes to the poison queue
// with reason events_disabled, to be replayed once events are on.
func TestEventsOffPoisonsHandlerEvents(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream := redistest.Name(t, "eventsoff")
	wet := sensorhub.SensorType{Name: "leaf_wetness", Unit: "%", Min: 0, Max: 100,
		Handle: func(_ context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
			e, err := sensorhub.NewReadingEvent(r, "leaf.wet", 1, nil)
			return sensorhub.Batch{Readings: []sensorhub.Reading{r}, Events: []sensorhub.Event{e}}, err
		}}
	p, err := pipeline.New(pipeline.Config{DB: db.Pool, Redis: redistest.Options(t), Stream: stream,
		Logger: slog.New(slog.DiscardHandler)}, wet)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload",
		`{"sensor":"leaf_wetness","value":80,"timestamp":"2024-12-01T12:00:00Z"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	var poisoned []goredis.XMessage
	for deadline := time.Now().Add(20 * time.Second); len(poisoned) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		poisoned = client.XRange(t.Context(), stream+sensorhub.PoisonSuffix, "-", "+").Val()
	}
	if len(poisoned) != 1 || poisoned[0].Values["reason"] != sensorhub.ReasonEventsDisabled {
		t.Fatalf("poisoned %+v, want one entry with reason %s", poisoned, sensorhub.ReasonEventsDisabled)
	}
}

// TestStopWithoutStart checks that a pipeline built and never started
// closes what New opened (TestMain finds leaked goroutines).
func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	p, err := pipeline.New(pipeline.Config{DB: postgrestest.New(t).Pool, Redis: redistest.Options(t), Events: true,
		Logger: slog.New(slog.DiscardHandler)}, temperature.Type())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatalf("Stop without Start = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := pipeline.New(pipeline.Config{})
	if err == nil || !strings.Contains(err.Error(), "Config.DB") || !strings.Contains(err.Error(), "Config.Redis") {
		t.Fatalf("New(Config{}) = %v, want both DB and Redis named", err)
	}
}

// TestStationZoneReadsZonelessTimes checks DESIGN.md §10 end to end: the
// legacy message from a station whose zone is America/New_York is stored
// at 17:00Z, while a station without a zone follows Decoder.Location (UTC).
func TestStationZoneReadsZonelessTimes(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream := redistest.Name(t, "zones")
	tz := "America/New_York"
	if _, err := stations.Set(t.Context(), db.Pool, stations.Update{ID: "ny", Timezone: &tz}); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{DB: db.Pool, Redis: redistest.Options(t), Stream: stream,
		Logger: slog.New(slog.DiscardHandler)}, temperature.Type())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	for _, station := range []string{"ny", "plain"} {
		if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload",
			`{"sensor":"temperature","value":14,"timestamp":"2024-12-01 12:00:00","station":"` + station + `"}`}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		rows, err := db.Pool.Query(t.Context(), `SELECT station, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM readings`)
		if err != nil {
			t.Fatal(err)
		}
		var station, ts string
		if _, err := pgx.ForEachRow(rows, []any{&station, &ts}, func() error { got[station] = ts; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got["ny"] != "2024-12-01T17:00:00Z" || got["plain"] != "2024-12-01T12:00:00Z" {
		t.Fatalf("stored %v, want ny at 2024-12-01T17:00:00Z and plain at 2024-12-01T12:00:00Z", got)
	}
}

// TestStaleness: with Staleness set, a sensor that stops is announced
// stale on the events stream, and recovered when it reports again.
func TestStaleness(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream, eventsStream := redistest.Name(t, "stale"), redistest.Name(t, "stale_events")
	p, err := pipeline.New(pipeline.Config{DB: db.Pool, Redis: redistest.Options(t), Stream: stream, Events: true, EventsStream: eventsStream,
		Staleness:          &staleness.Policy{After: 2, DefaultInterval: 200 * time.Millisecond},
		StaleSweepInterval: 50 * time.Millisecond,
		Logger:             slog.New(slog.DiscardHandler)}, temperature.Type())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	send := func(ts string) {
		t.Helper()
		if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload",
			`{"station":"roof","sensor":"temperature","value":14,"timestamp":"` + ts + `"}`}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(typ string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, e := range redistest.Events(t, client, eventsStream) {
				if e.Type == typ {
					return
				}
			}
		}
		t.Fatalf("no %s event within 30 s", typ)
	}
	send("2024-12-01T12:00:00Z")
	waitFor(sensorhub.EventSensorStale)
	send("2024-12-01T12:01:00Z")
	waitFor(sensorhub.EventSensorRecovered)
	if p.Sweeper().Stats().Stale == 0 {
		t.Error("the sweeper's stats count no stale event")
	}

	if _, err := pipeline.New(pipeline.Config{DB: db.Pool, Redis: redistest.Options(t), Staleness: &staleness.Policy{}}); err == nil ||
		!strings.Contains(err.Error(), "Config.Events") {
		t.Errorf("New with Staleness and events off = %v, want an error naming Config.Events", err)
	}
}

// TestRollups: the pipeline keeps the rollups, with the days of stations
// without a zone in Decoder.Location.
func TestRollups(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream := redistest.Name(t, "rollups")
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{DB: db.Pool, Redis: redistest.Options(t), Stream: stream,
		Decoder: sensorhub.DecoderConfig{Location: berlin}, Logger: slog.New(slog.DiscardHandler)}, temperature.Type())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	for _, v := range []string{"10", "14"} {
		if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload",
			`{"sensor":"temperature","value":` + v + `,"timestamp":"2024-12-01T00:30:0` + v[1:] + `+01:00"}`}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var (
		day   time.Time
		count int
		avg   float64
	)
	for deadline := time.Now().Add(20 * time.Second); count < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("daily rollup %s count %d avg %v, want 2 readings", day, count, avg)
		}
		err := db.Pool.QueryRow(t.Context(), `SELECT bucket, count, avg FROM readings_1d`).Scan(&day, &count, &avg)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
	}
	if want := time.Date(2024, 11, 30, 23, 0, 0, 0, time.UTC); !day.Equal(want) || avg != 12 {
		t.Errorf("daily rollup %s avg %v, want the Berlin day from %s, avg 12", day, avg, want)
	}
	if p.Rollups() == nil || p.Rollups().Stats().Recomputed == 0 {
		t.Error("Rollups() reports no work")
	}
}
