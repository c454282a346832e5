package rollup_test

import (
	"context"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup/rolluptest"
)

func temperature(station string, ts time.Time, v float64) sensorhub.Reading {
	return sensorhub.Reading{Station: station, Sensor: "temperature", Time: ts, Value: v, Unit: "Cel"}
}

// TestChangeDuringRecomputationIsNotLost holds a change to a bucket
// uncommitted while a pass recomputes that bucket: the pass must leave
// the bucket pending, and the next one must include the change.
func TestChangeDuringRecomputationIsNotLost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	t0 := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	write(t, ctx, db.Pool, temperature("roof", t0, 10))
	w := newWorker(t, rollup.Config{DB: db.Pool})

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `UPDATE readings SET value = 20 WHERE station = 'roof'`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Work(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var pending int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM rollup_invalidations`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 1 {
		t.Fatalf("%d invalidations pending after a change committed during the pass, want 1", pending)
	}
	workAll(t, ctx, w)
	var avg float64
	if err := db.Pool.QueryRow(ctx, `SELECT avg FROM readings_5m WHERE station = 'roof'`).Scan(&avg); err != nil {
		t.Fatal(err)
	}
	if avg != 20 {
		t.Errorf("avg = %v after the change, want 20", avg)
	}
}

// TestConcurrentWritersAndWorkers runs writers that keep changing a few
// buckets against two workers; once settled, the rollups match the
// oracle.
func TestConcurrentWritersAndWorkers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	startWorker(t, ctx, db)
	startWorker(t, ctx, db)
	t0 := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		write(t, ctx, db.Pool, temperature("roof", t0.Add(time.Duration(i)*time.Second), float64(i%17)))
		if _, err := db.Pool.Exec(ctx, `UPDATE readings SET value = value + 1 WHERE station = 'roof' AND ts = $1`, t0.Add(time.Duration(i/2)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	rolluptest.Settle(t, ctx, db.Pool, 2*time.Minute)
	rolluptest.Check(t, ctx, db.Pool, defaultZone, builtinTypes)
}

func TestRetentionDropsOldInvalidations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	now := time.Now().UTC().Truncate(time.Hour)
	write(t, ctx, db.Pool, temperature("roof", now.AddDate(0, 0, -30), 1), temperature("roof", now.AddDate(0, 0, -1), 2))
	w := newWorker(t, rollup.Config{DB: db.Pool, Retention: 7 * 24 * time.Hour})
	workAll(t, ctx, w)
	var buckets []time.Time
	rows, err := db.Pool.Query(ctx, `SELECT bucket FROM readings_5m ORDER BY bucket`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b time.Time
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		buckets = append(buckets, b)
	}
	if len(buckets) != 1 || !buckets[0].Equal(now.AddDate(0, 0, -1)) {
		t.Errorf("5-minute rollups = %v, want only the one inside the horizon", buckets)
	}
	if st := w.Stats(); st.Dropped != 1 || st.Recomputed != 1 {
		t.Errorf("stats = %+v, want 1 dropped and 1 recomputed", st)
	}
}

func TestRebuildRestoresTheRollups(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	oracleSetup(t, ctx, db.Pool)
	write(t, ctx, db.Pool, randomReadingsSeeded(1, 1500)...)
	workAll(t, ctx, newWorker(t, rollup.Config{DB: db.Pool, Zone: defaultZone}))
	// The rollups are lost or wrong, and nothing is pending: only a rebuild
	// can repair them. It must not take a 5-minute bucket without a row
	// for one whose readings its hour and day do not count yet.
	for _, q := range []string{
		`DELETE FROM rollup_invalidations`,
		`DELETE FROM readings_5m WHERE sensor = 'rain'`,
		`UPDATE readings_1h SET avg = -999`,
		`INSERT INTO readings_1d (station, sensor, bucket, count) VALUES ('berlin', 'temperature', '2020-01-01', 1)`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rollup.Config{DB: db.Pool, Types: builtinTypes, Zone: defaultZone}
	var last rollup.Progress
	// One station, then all of them; the second run repeats the first's
	// work, which must change nothing.
	if _, err := rollup.Rebuild(ctx, cfg, rollup.Range{Station: "berlin"}, nil); err != nil {
		t.Fatal(err)
	}
	n, err := rollup.Rebuild(ctx, cfg, rollup.Range{}, func(p rollup.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || last.Buckets != n || last.Done != 1 || last.StationN != last.Stations || last.Stations != 3 {
		t.Errorf("rebuilt %d buckets, last progress %+v; want all three stations done", n, last)
	}
	rolluptest.Check(t, ctx, db.Pool, defaultZone, builtinTypes)
}

func TestDefaultZoneChangeRebuildsDays(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	write(t, ctx, db.Pool, temperature("roof", time.Date(2024, 12, 1, 3, 0, 0, 0, time.UTC), 1))
	workAll(t, ctx, newWorker(t, rollup.Config{DB: db.Pool, Zone: "UTC"}))
	workAll(t, ctx, newWorker(t, rollup.Config{DB: db.Pool, Zone: "America/New_York"}))
	var day time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT bucket FROM readings_1d`).Scan(&day); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 11, 30, 5, 0, 0, 0, time.UTC); !day.Equal(want) {
		t.Errorf("day = %s after the default zone changed to New York, want %s", day, want)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := rollup.Config{Zone: "Mars/Olympus", Retention: -1, Interval: -1, Batch: -1,
		Types: []sensorhub.SensorType{{Name: "x", Unit: "m", Aggregation: "median"}}}.Validate()
	for _, want := range []string{"Config.DB", "Mars/Olympus", "Retention", "Interval", "Batch", "median"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}
