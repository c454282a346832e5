package outbox_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

var quiet = slog.New(slog.DiscardHandler)

// streamEvents reads every event on stream, in stream order.
func streamEvents(t *testing.T, stream string) []sensorhub.Event {
	t.Helper()
	return redistest.Events(t, redistest.Client(t), stream)
}

func newForwarder(t *testing.T, db *postgrestest.DB, stream string, cfg outbox.Config) *outbox.Forwarder {
	t.Helper()
	pub, err := redis.NewPublisher(redistest.Client(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DB, cfg.Publisher, cfg.Stream, cfg.Logger = db.Pool, pub, stream, quiet
	cfg.PollInterval, cfg.MeasureInterval = 20*time.Millisecond, 20*time.Millisecond
	fwd, err := outbox.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := fwd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Stop(context.Background()) })
	return fwd
}

// TestForwarderDownDeliversEverythingInCommitOrderPerStation commits while
// no forwarder runs, from concurrent writers of several stations, then
// starts one, stops it half-way, writes more and starts another: every
// event arrives, each distinct UUID once, per station in commit order.
func TestForwarderDownDeliversEverythingInCommitOrderPerStation(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	stream := redistest.Name(t, "events")
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	stations := []string{"a", "b", "c", "d"}
	// Each station's writes are sequential, so its commit order is the
	// order of its readings' times; stations write concurrently and share
	// transactions' timing with each other.
	writeRound := func(from, to int) {
		var wg sync.WaitGroup
		for _, st := range stations {
			wg.Go(func() {
				for i := from; i < to; i++ {
					r := sensorhub.Reading{Station: st, Sensor: "temperature", Time: base.Add(time.Duration(i) * time.Minute), Value: float64(i), Unit: "Cel"}
					if _, err := sink.Write(context.Background(), sensorhub.Batch{Readings: []sensorhub.Reading{r}}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	writeRound(0, 50)

	fwd := newForwarder(t, db, stream, outbox.Config{})
	poll.Until(t, 5*time.Second, "lag measured", func() bool { return !fwd.Stats().MeasuredAt.IsZero() })
	poll.Until(t, 20*time.Second, "first 200 events forwarded", func() bool { return len(streamEvents(t, stream)) >= 200 })
	poll.Until(t, 5*time.Second, "nothing pending", func() bool { s := fwd.Stats(); return s.Pending == 0 && s.Lag == 0 })
	if err := fwd.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	writeRound(50, 80) // forwarder down
	second := newForwarder(t, db, stream, outbox.Config{})
	poll.Until(t, 5*time.Second, "backlog measured", func() bool { return second.Stats().Pending > 0 || len(streamEvents(t, stream)) >= 320 })
	poll.Until(t, 20*time.Second, "all 320 events forwarded", func() bool { return len(streamEvents(t, stream)) >= 320 })

	events := streamEvents(t, stream)
	seen := map[string]bool{}
	last := map[string]time.Time{}
	for _, e := range events {
		if seen[e.UUID] {
			continue // at least once: a repeat is allowed, and skipped
		}
		seen[e.UUID] = true
		var p sensorhub.ReadingsStored
		if err := e.Decode(&p); err != nil || e.Type != sensorhub.EventReadingsStored || len(p.Readings) != 1 {
			t.Fatalf("event %+v, %v", e, err)
		}
		r := p.Readings[0]
		if !r.Time.After(last[r.Station]) && !last[r.Station].IsZero() {
			t.Errorf("station %s: reading at %s forwarded after %s, not in commit order", r.Station, r.Time, last[r.Station])
		}
		last[r.Station] = r.Time
	}
	if len(seen) != 320 {
		t.Errorf("%d distinct events, want 320", len(seen))
	}
	if s := second.Stats(); s.Forwarded < 120 || s.Failed != 0 || !s.Running {
		t.Errorf("stats %+v, want ≥120 forwarded, none failed, running", s)
	}
	if err := second.Check(t.Context()); err != nil {
		t.Errorf("Check = %v", err)
	}
}

func TestForwarderCleansUpForwardedEventsAfterRetention(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	stream := redistest.Name(t, "events")
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := sensorhub.Reading{Station: "roof", Sensor: "temperature", Time: time.Now(), Value: 1, Unit: "Cel"}
	if _, err := sink.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{r}}); err != nil {
		t.Fatal(err)
	}
	fwd := newForwarder(t, db, stream, outbox.Config{Retention: time.Millisecond, CleanupInterval: time.Hour})
	poll.Until(t, 10*time.Second, "forwarded", func() bool { return len(streamEvents(t, stream)) == 1 })
	// The forwarder records its offset just after publishing; once it has,
	// the event is past retention and goes.
	poll.Until(t, 10*time.Second, "the forwarded event deleted", func() bool {
		n, err := fwd.Cleanup(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})

	// Not yet forwarded: written while the forwarder is stopped.
	if err := fwd.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.Time = r.Time.Add(time.Second)
	if _, err := sink.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{r}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := fwd.Cleanup(t.Context()); err != nil || n != 0 {
		t.Fatalf("Cleanup = %d, %v; want the unforwarded event kept", n, err)
	}
	left, err := outbox.List(t.Context(), db.Pool, 10)
	if err != nil || len(left) != 1 {
		t.Fatalf("outbox holds %d events (%v), want the unforwarded one kept", len(left), err)
	}
}

func TestForwarderStartsWhileDatabaseIsDown(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(t.Context(), "postgres://postgres@127.0.0.1:1/test?connect_timeout=1") // nothing listens
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	fwd := newForwarder(t, &postgrestest.DB{Pool: pool}, redistest.Name(t, "events"), outbox.Config{})
	time.Sleep(100 * time.Millisecond)
	if err := fwd.Check(t.Context()); err == nil {
		t.Error("Check passed with the database down")
	}
	if s := fwd.Stats(); s.Running {
		t.Errorf("stats %+v: running without a database", s)
	}
	if _, err := outbox.NewForwarder(outbox.Config{}); err == nil {
		t.Error("empty config accepted")
	}
}
