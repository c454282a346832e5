package staleness_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
)

// fast is a policy for tests: a series that reported once is stale after
// 2 × 200 ms of silence.
var fast = staleness.Policy{After: 2, DefaultInterval: 200 * time.Millisecond, MinInterval: 10 * time.Millisecond}

// replica is what one sensorhub process adds to a database: a sink with a
// Tracker, and a Sweeper.
type replica struct {
	sink    *postgres.Sink
	tracker *staleness.Tracker
	sweeper *staleness.Sweeper
}

// newReplica returns a replica on db with policy; its sweeper is started
// unless sweepEvery is zero, and stopped when the test ends.
func newReplica(t *testing.T, db *postgrestest.DB, policy staleness.Policy, sweepEvery time.Duration) *replica {
	t.Helper()
	r := &replica{tracker: staleness.NewTracker(policy)}
	var err error
	r.sink, err = postgres.New(postgres.Config{DB: db.Pool, Logger: slog.New(slog.DiscardHandler), Observers: []postgres.Observer{r.tracker}})
	if err != nil {
		t.Fatal(err)
	}
	r.sweeper, err = staleness.NewSweeper(staleness.Config{DB: db.Pool, Policy: policy, SweepInterval: sweepEvery, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if sweepEvery > 0 {
		if err := r.sweeper.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := r.sweeper.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	return r
}

// write stores readings of the sensors given at station, device time at.
func (r *replica) write(t *testing.T, station string, at time.Time, sensors ...string) {
	t.Helper()
	var batch sensorhub.Batch
	for _, s := range sensors {
		batch.Readings = append(batch.Readings, sensorhub.Reading{Station: station, Sensor: s, Time: at, Value: 1, Unit: "Cel"})
	}
	if _, err := r.sink.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
}

// announced returns the staleness events in db's outbox, in commit order.
func announced(t *testing.T, db *postgrestest.DB) []sensorhub.Event {
	t.Helper()
	all, err := outbox.List(t.Context(), db.Pool, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	var out []sensorhub.Event
	for _, e := range all {
		if e.Type == sensorhub.EventSensorStale || e.Type == sensorhub.EventSensorRecovered {
			out = append(out, e)
		}
	}
	return out
}

// count returns how many events of type typ events has per series
// "station/sensor".
func count(t *testing.T, events []sensorhub.Event, typ string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, e := range events {
		if e.Type != typ {
			continue
		}
		var p sensorhub.SensorStaleness
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n[p.Station+"/"+p.Sensor]++
	}
	return n
}

// sweptAfter waits until every sweeper completed two more sweeps, so that
// each has had a full chance to announce what is due.
func sweptAfter(t *testing.T, sweepers ...*staleness.Sweeper) {
	t.Helper()
	for i, s := range sweepers {
		start := s.Stats().Sweeps
		poll.Until(t, 30*time.Second, fmt.Sprintf("sweeper %d sweeps twice more", i), func() bool { return s.Stats().Sweeps >= start+2 })
	}
}

// status returns the state of the series (station, sensor).
func status(t *testing.T, db *postgrestest.DB, policy staleness.Policy, station, sensor string) staleness.Status {
	t.Helper()
	all, err := staleness.List(t.Context(), db.Pool, policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Station == station && s.Sensor == sensor {
			return s
		}
	}
	t.Fatalf("no status for %s/%s in %+v", station, sensor, all)
	return staleness.Status{}
}
