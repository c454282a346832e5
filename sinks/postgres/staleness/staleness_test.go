package staleness_test

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
)

// TestStaleOnceRecoveredOnceWithTwoReplicas is the contract of DESIGN.md
// §16 under a race: two replicas, each with a sink and a sweeper, share
// one database. Every series that stops is announced stale exactly once;
// when readings come back through both sinks at once, it is announced
// recovered exactly once.
func TestStaleOnceRecoveredOnceWithTwoReplicas(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	a := newReplica(t, db, fast, 20*time.Millisecond)
	b := newReplica(t, db, fast, 20*time.Millisecond)

	const stations = 20
	sensors := []string{"temperature", "humidity"}
	t0 := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range stations {
		[]*replica{a, b}[i%2].write(t, fmt.Sprintf("st%02d", i), t0, sensors...)
	}
	series := stations * len(sensors)

	poll.Until(t, 30*time.Second, "every series announced stale", func() bool { return len(count(t, announced(t, db), sensorhub.EventSensorStale)) == series })
	// Keep them from going stale again once recovered, for the rest of
	// the test; a stale series stays announced.
	for i := range stations {
		for _, s := range sensors {
			if err := staleness.SetInterval(t.Context(), db.Pool, fmt.Sprintf("st%02d", i), s, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	sweptAfter(t, a.sweeper, b.sweeper)
	for k, n := range count(t, announced(t, db), sensorhub.EventSensorStale) {
		if n != 1 {
			t.Errorf("%s announced stale %d times, want once", k, n)
		}
	}
	if got := a.sweeper.Stats().Stale + b.sweeper.Stats().Stale; got != uint64(series) {
		t.Errorf("sweepers count %d stale events, want %d", got, series)
	}

	// Both replicas store new readings of every series at once.
	var wg sync.WaitGroup
	for j, r := range []*replica{a, b} {
		wg.Go(func() {
			for i := range stations {
				r.write(t, fmt.Sprintf("st%02d", i), t0.Add(time.Duration(j+1)*time.Minute), sensors...)
			}
		})
	}
	wg.Wait()
	sweptAfter(t, a.sweeper, b.sweeper)

	events := announced(t, db)
	recovered := count(t, events, sensorhub.EventSensorRecovered)
	if len(recovered) != series {
		t.Errorf("%d series announced recovered, want %d", len(recovered), series)
	}
	for k, n := range recovered {
		if n != 1 {
			t.Errorf("%s announced recovered %d times, want once", k, n)
		}
	}
	if n := len(events); n != 2*series {
		t.Errorf("%d staleness events, want %d (stale and recovered once per series)", n, 2*series)
	}
	if got := a.tracker.Recovered() + b.tracker.Recovered(); got != uint64(series) {
		t.Errorf("trackers count %d recovered events, want %d", got, series)
	}
	for _, st := range mustList(t, db) {
		if st.Stale {
			t.Errorf("%s/%s still stale", st.Station, st.Sensor)
		}
	}
}

// TestRestartAnnouncesNothingAgain: the stale flag lives in the database,
// so a new sweeper (a restarted replica) does not announce a series again.
func TestRestartAnnouncesNothingAgain(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	first := newReplica(t, db, fast, 20*time.Millisecond)
	first.write(t, "roof", time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC), "temperature")
	poll.Until(t, 30*time.Second, "stale announced", func() bool { return len(announced(t, db)) == 1 })
	if err := first.sweeper.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	restarted := newReplica(t, db, fast, 0)
	for range 3 {
		n, err := restarted.sweeper.Sweep(t.Context())
		if err != nil || n != 0 {
			t.Fatalf("Sweep after a restart = %d, %v; want nothing announced", n, err)
		}
		time.Sleep(2 * fast.DefaultInterval)
	}
	if n := len(announced(t, db)); n != 1 {
		t.Fatalf("%d staleness events after the restart, want the first one only", n)
	}
}

// TestEventsCarryTheContractFields checks both payloads against
// DESIGN.md §16, times against what readings holds, and that the UUIDs
// are derived from series and transition number.
func TestEventsCarryTheContractFields(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	r := newReplica(t, db, fast, 20*time.Millisecond)
	ts := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	r.write(t, "roof", ts, "temperature")
	poll.Until(t, 30*time.Second, "stale announced", func() bool { return len(announced(t, db)) == 1 })
	if err := r.sweeper.Stop(t.Context()); err != nil { // no second stale after the recovery
		t.Fatal(err)
	}
	later := ts.Add(time.Minute)
	r.write(t, "roof", later, "temperature")

	events := announced(t, db)
	if len(events) != 2 {
		t.Fatalf("events = %+v, want stale then recovered", events)
	}
	receivedAt := func(ts time.Time) time.Time {
		var at time.Time
		if err := db.Pool.QueryRow(t.Context(), `SELECT received_at FROM readings WHERE ts = $1`, ts).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at.UTC()
	}
	for i, want := range []struct {
		typ        string
		transition int64
		lastTS     time.Time
	}{
		{sensorhub.EventSensorStale, 1, ts},
		{sensorhub.EventSensorRecovered, 2, later},
	} {
		e := events[i]
		var p sensorhub.SensorStaleness
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		wantP := sensorhub.SensorStaleness{Station: "roof", Sensor: "temperature", LastTS: want.lastTS,
			LastReceivedAt: receivedAt(want.lastTS), ExpectedIntervalS: fast.DefaultInterval.Seconds()}
		if e.Type != want.typ || e.Version != 1 || p != wantP {
			t.Errorf("event %d = %s v%d %+v, want %s v1 %+v", i, e.Type, e.Version, p, want.typ, wantP)
		}
		again, err := sensorhub.NewSensorStalenessEvent(want.typ, want.transition, e.Time, wantP)
		if err != nil {
			t.Fatal(err)
		}
		if e.UUID != again.UUID {
			t.Errorf("%s UUID %s, want %s derived from the series and transition %d", e.Type, e.UUID, again.UUID, want.transition)
		}
	}
	if !events[1].Time.Equal(receivedAt(later)) {
		t.Errorf("recovered at %s, want the arrival that ended the silence, %s", events[1].Time, receivedAt(later))
	}
}

// TestDuplicatesAreNoArrival: a re-sent reading, stored already, neither
// counts as a sign of life nor recovers a stale series.
func TestDuplicatesAreNoArrival(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	r := newReplica(t, db, fast, 20*time.Millisecond)
	ts := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	r.write(t, "roof", ts, "temperature")
	first := status(t, db, fast, "roof", "temperature").LastReceivedAt
	poll.Until(t, 30*time.Second, "stale announced", func() bool { return len(announced(t, db)) == 1 })

	r.write(t, "roof", ts, "temperature")
	sweptAfter(t, r.sweeper)
	st := status(t, db, fast, "roof", "temperature")
	if !st.Stale || !st.LastReceivedAt.Equal(first) || len(announced(t, db)) != 1 {
		t.Fatalf("after a duplicate: %+v, %d events; want still stale, last received %s, no recovery", st, len(announced(t, db)), first)
	}
}

// TestLearnedInterval checks that the expected interval is the median of
// the gaps between arrivals, learned once there are three gaps, and that
// one long outlier leaves it be. Arrivals are spaced by moving the
// recorded arrival back, not by sleeping.
func TestLearnedInterval(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	policy := staleness.Policy{MinInterval: time.Second}
	r := newReplica(t, db, policy, 0)
	ts := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	arriveAfter := func(gap time.Duration) {
		t.Helper()
		if _, err := db.Pool.Exec(t.Context(), `UPDATE sensor_status SET last_received_at = last_received_at - make_interval(secs => $1)`, gap.Seconds()); err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(time.Minute)
		r.write(t, "roof", ts, "temperature")
	}
	expected := func() time.Duration { return status(t, db, policy, "roof", "temperature").ExpectedInterval }

	r.write(t, "roof", ts, "temperature")
	arriveAfter(60 * time.Second)
	arriveAfter(60 * time.Second)
	if got := expected(); got != staleness.DefaultDefaultInterval {
		t.Fatalf("expected interval after two gaps = %s, want the default %s", got, staleness.DefaultDefaultInterval)
	}
	arriveAfter(60 * time.Second)
	near := func(got, want time.Duration) bool { return math.Abs(got.Seconds()-want.Seconds()) < 5 }
	if got := expected(); !near(got, time.Minute) {
		t.Fatalf("expected interval after three gaps of a minute = %s, want about 1m", got)
	}
	arriveAfter(time.Hour)
	if got := expected(); !near(got, time.Minute) {
		t.Fatalf("expected interval after one gap of an hour = %s, want still about 1m (median)", got)
	}

	arriveAfter(30 * time.Second)
	before := expected()
	if err := staleness.SetInterval(t.Context(), db.Pool, "roof", "temperature", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := status(t, db, policy, "roof", "temperature"); st.ExpectedInterval != 90*time.Second || st.Interval != 90*time.Second {
		t.Fatalf("after SetInterval 90s: %+v", st)
	}
	if err := staleness.ClearInterval(t.Context(), db.Pool, "roof", "temperature"); err != nil {
		t.Fatal(err)
	}
	if st := status(t, db, policy, "roof", "temperature"); st.ExpectedInterval != before || st.Interval != 0 {
		t.Fatalf("after ClearInterval: %+v, want the learned %s back", st, before)
	}
}

// TestLearnedIntervalHasAFloor: a series that reports faster than
// MinInterval is still expected at MinInterval at least; arrivals closer
// than a tenth of it are not even recorded (the tracker's resolution).
func TestLearnedIntervalHasAFloor(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	policy := staleness.Policy{MinInterval: time.Hour}
	r := newReplica(t, db, policy, 0)
	ts := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	r.write(t, "roof", ts, "temperature")
	for i := range 5 {
		// Arrivals 10 minutes apart: above the 6-minute resolution, below
		// the floor.
		if _, err := db.Pool.Exec(t.Context(), `UPDATE sensor_status SET last_received_at = last_received_at - interval '10 minutes'`); err != nil {
			t.Fatal(err)
		}
		r.write(t, "roof", ts.Add(time.Duration(i+1)*time.Second), "temperature")
	}
	if got := status(t, db, policy, "roof", "temperature").ExpectedInterval; got != time.Hour {
		t.Fatalf("expected interval = %s, want the floor 1h", got)
	}
}

// TestSweeperCountsSilenceFromItsStart: a series silent since before the
// sweeper's first sweep (the service was down) gets a full threshold from
// then before it is stale. The floor of learned intervals (an hour here)
// does not apply to the default interval.
func TestSweeperCountsSilenceFromItsStart(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	policy := staleness.Policy{After: 2, DefaultInterval: time.Second, MinInterval: time.Hour}
	r := newReplica(t, db, policy, 0)
	r.write(t, "roof", time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC), "temperature")
	if _, err := db.Pool.Exec(t.Context(), `UPDATE sensor_status SET last_received_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	if n, err := r.sweeper.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("first Sweep = %d, %v; want nothing stale yet", n, err)
	}
	poll.Until(t, 30*time.Second, "stale after the threshold from the first sweep", func() bool {
		n, err := r.sweeper.Sweep(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
}

// TestSetIntervalBeforeTheFirstReading: an interval may be set for a
// series that never reported; it is not stale until it has.
func TestSetIntervalBeforeTheFirstReading(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	r := newReplica(t, db, fast, 0)
	if err := staleness.SetInterval(t.Context(), db.Pool, "new", "rain", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := r.sweeper.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want a series that never reported left alone", n, err)
	}
	r.write(t, "new", time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC), "rain")
	if st := status(t, db, fast, "new", "rain"); st.Interval != time.Millisecond || st.LastReceivedAt.IsZero() {
		t.Fatalf("after the first reading: %+v, want the interval kept and the arrival recorded", st)
	}
	if err := staleness.SetInterval(t.Context(), db.Pool, "new", "rain", 0); err == nil {
		t.Fatal("SetInterval 0 succeeded")
	}
}

// TestSweeperStats: the sweeper measures every series after its sweeps,
// for /metrics.
func TestSweeperStats(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	r := newReplica(t, db, fast, 20*time.Millisecond)
	r.write(t, "roof", time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC), "temperature")
	poll.Until(t, 30*time.Second, "the stats show the series stale", func() bool {
		s := r.sweeper.Stats()
		return len(s.Series) == 1 && s.Series[0].Stale && s.Stale == 1 && !s.MeasuredAt.IsZero()
	})
}

func mustList(t *testing.T, db *postgrestest.DB) []staleness.Status {
	t.Helper()
	all, err := staleness.List(t.Context(), db.Pool, fast)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestArrivalsWithinTheResolutionAreNotRecorded: a series' row is updated
// at most once per resolution (a tenth of MinInterval) while it is not
// stale, so that thousands of readings a second cost one update a second.
func TestArrivalsWithinTheResolutionAreNotRecorded(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	policy := staleness.Policy{MinInterval: time.Hour}
	r := newReplica(t, db, policy, 0)
	ts := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	r.write(t, "roof", ts, "temperature")
	first := status(t, db, policy, "roof", "temperature")
	r.write(t, "roof", ts.Add(time.Second), "temperature")
	if got := status(t, db, policy, "roof", "temperature"); !got.LastReceivedAt.Equal(first.LastReceivedAt) || !got.LastTS.Equal(first.LastTS) {
		t.Fatalf("a second arrival within the resolution updated the row: %+v, then %+v", first, got)
	}
}
