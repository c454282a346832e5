package rollup_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup/rolluptest"
)

// write stores readings through the sink.
func write(t *testing.T, ctx context.Context, pool *pgxpool.Pool, readings ...sensorhub.Reading) {
	t.Helper()
	sink, err := postgres.New(postgres.Config{DB: pool, DisableEvents: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(ctx, sensorhub.Batch{Readings: readings}); err != nil {
		t.Fatal(err)
	}
}

// newWorker returns a Worker, not started, for tests that call Work.
func newWorker(t *testing.T, cfg rollup.Config) *rollup.Worker {
	t.Helper()
	cfg.Types, cfg.Logger = builtinTypes, quiet
	w, err := rollup.NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// workAll runs passes until nothing is pending.
func workAll(t *testing.T, ctx context.Context, w *rollup.Worker) {
	t.Helper()
	for range 1000 {
		n, err := w.Work(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("still work left after 1000 passes")
}

func TestRainDaySumsToTheTotal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO stations (id, timezone) VALUES ('garden', 'Europe/Berlin')`); err != nil {
		t.Fatal(err)
	}
	// 2024-10-27 in Berlin has 25 hours: 1500 minutes of rain, 0.1 mm in
	// each but every seventh, 0.3 mm.
	day := time.Date(2024, 10, 27, 0, 0, 0, 0, mustZone(t, "Europe/Berlin"))
	next := time.Date(2024, 10, 28, 0, 0, 0, 0, day.Location())
	var (
		readings []sensorhub.Reading
		total    float64
	)
	for i, ts := 0, day; ts.Before(next); i, ts = i+1, ts.Add(time.Minute) {
		v := 0.1
		if i%7 == 0 {
			v = 0.3
		}
		total += v
		readings = append(readings, sensorhub.Reading{Station: "garden", Sensor: "rain", Time: ts, Value: v, Unit: "mm"})
	}
	if len(readings) != 1500 {
		t.Fatalf("%d minutes in the day, want 1500", len(readings))
	}
	write(t, ctx, db.Pool, readings...)
	workAll(t, ctx, newWorker(t, rollup.Config{DB: db.Pool}))

	var (
		bucket   time.Time
		count    int64
		sum, max float64
		maxTS    time.Time
		hours    int
	)
	if err := db.Pool.QueryRow(ctx, `SELECT bucket, count, sum, max, max_ts FROM readings_1d WHERE station = 'garden' AND sensor = 'rain'`).
		Scan(&bucket, &count, &sum, &max, &maxTS); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM readings_1h WHERE station = 'garden'`).Scan(&hours); err != nil {
		t.Fatal(err)
	}
	if !bucket.Equal(day) || count != 1500 || math.Abs(sum-total) > 1e-9 || max != 0.3 || !maxTS.Equal(day) || hours != 25 {
		t.Errorf("day = %s, count %d, sum %v, max %v at %s, %d hours; want %s, 1500, %v, 0.3 at the first minute, 25 hours",
			bucket, count, sum, max, maxTS, hours, day, total)
	}
}

func TestWindDirectionIsAVectorMean(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	t0 := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	dir := func(station string, s int, deg float64) sensorhub.Reading {
		return sensorhub.Reading{Station: station, Sensor: "wind_direction", Time: t0.Add(time.Duration(s) * time.Second), Value: deg, Unit: "deg"}
	}
	speed := func(station string, s int, v float64) sensorhub.Reading {
		return sensorhub.Reading{Station: station, Sensor: "wind_speed", Time: t0.Add(time.Duration(s) * time.Second), Value: v, Unit: "m/s"}
	}
	write(t, ctx, db.Pool,
		// Unweighted: no speeds.
		dir("north", 0, 350), dir("north", 60, 10),
		// Weighted: a strong east wind and a weak west one average east.
		dir("weighted", 0, 90), speed("weighted", 0, 10), dir("weighted", 60, 270), speed("weighted", 60, 1),
		// Calm: every weight zero, no direction.
		dir("calm", 0, 45), speed("calm", 0, 0))
	w := newWorker(t, rollup.Config{DB: db.Pool})
	workAll(t, ctx, w)

	want := map[string]*float64{"north": ptr(0.0), "weighted": ptr(90.0), "calm": nil}
	for station, wantAvg := range want {
		for _, table := range []string{"readings_5m", "readings_1h", "readings_1d"} {
			var avg *float64
			if err := db.Pool.QueryRow(ctx, `SELECT avg FROM `+table+` WHERE station = $1 AND sensor = 'wind_direction'`, station).Scan(&avg); err != nil {
				t.Fatalf("%s %s: %v", table, station, err)
			}
			if (avg == nil) != (wantAvg == nil) || avg != nil && !rolluptest.CloseEnough(*avg, *wantAvg, true) {
				t.Errorf("%s: %s mean direction = %v, want %v", table, station, deref(avg), deref(wantAvg))
			}
		}
	}

	// A new speed re-weighs the direction: west now wins.
	if _, err := db.Pool.Exec(ctx, `UPDATE readings SET value = 30 WHERE station = 'weighted' AND sensor = 'wind_speed' AND value = 1`); err != nil {
		t.Fatal(err)
	}
	workAll(t, ctx, w)
	var avg float64
	if err := db.Pool.QueryRow(ctx, `SELECT avg FROM readings_1d WHERE station = 'weighted' AND sensor = 'wind_direction'`).Scan(&avg); err != nil {
		t.Fatal(err)
	}
	if !rolluptest.CloseEnough(avg, 270, true) {
		t.Errorf("after the speed changed, mean direction = %v, want 270", avg)
	}

	// Speeds stored after the directions they weigh were counted: the
	// opposite directions cancelled out, and now the strong one wins.
	write(t, ctx, db.Pool, dir("late", 0, 90), dir("late", 60, 270))
	workAll(t, ctx, w)
	write(t, ctx, db.Pool, speed("late", 0, 10), speed("late", 60, 1))
	workAll(t, ctx, w)
	for _, table := range []string{"readings_5m", "readings_1h", "readings_1d"} {
		var avg *float64
		if err := db.Pool.QueryRow(ctx, `SELECT avg FROM `+table+` WHERE station = 'late' AND sensor = 'wind_direction'`).Scan(&avg); err != nil {
			t.Fatal(err)
		}
		if avg == nil || !rolluptest.CloseEnough(*avg, 90, true) {
			t.Errorf("%s: after late speeds, mean direction = %v, want 90", table, deref(avg))
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func ptr[T any](v T) *T { return &v }

func deref(p *float64) any {
	if p == nil {
		return "null"
	}
	return *p
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
