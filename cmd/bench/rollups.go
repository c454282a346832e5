package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup"
)

// targetRollupsRatio is issue 14's target: the drain with rollups on at
// least this fraction of the drain with them off.
const targetRollupsRatio = 0.8

// rollupTriggers are migration 0009's triggers on readings, which record
// the buckets every change touches; a phase with rollups off drops them,
// so that it pays nothing for rollups.
var rollupTriggers = []string{"readings_rollup_insert", "readings_rollup_update", "readings_rollup_delete"}

// rollupsOff turns rollups off in schema and in the binary's environment
// env: no worker, no invalidation log.
func (e *environment) rollupsOff(ctx context.Context, schema string, env []string) ([]string, error) {
	if err := e.rollupTriggers(ctx, schema, "DISABLE"); err != nil {
		return nil, fmt.Errorf("rollups off: %w", err)
	}
	return append(env, "SENSORHUB_ROLLUPS=false"), nil
}

// rollupTriggers runs ALTER TABLE … action TRIGGER (ENABLE or DISABLE) on
// each of rollupTriggers in schema.
func (e *environment) rollupTriggers(ctx context.Context, schema, action string) error {
	for _, trigger := range rollupTriggers {
		if _, err := e.admin.Exec(ctx, "ALTER TABLE "+schema+".readings "+action+" TRIGGER "+trigger); err != nil {
			return err
		}
	}
	return nil
}

// waitRollups polls until schema has no pending rollup recomputation and
// returns how long that took, or fails after timeout.
func (e *environment) waitRollups(ctx context.Context, schema string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		var pending int
		if err := e.admin.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.rollup_invalidations`).Scan(&pending); err != nil {
			return 0, err
		}
		if pending == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%d rollup invalidations still pending after %s", pending, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// targetRollupLagP99 is issue 14's target for the rollup lag while live.
const targetRollupLagP99 = 5 * time.Second

// sampleRollupLag measures schema's rollup lag (the age of the oldest
// pending invalidation) every 500 ms until the returned function is
// called, which returns the samples' 99th percentile. Not more often: the
// oldest invalidation is found past the index entries of those the
// workers deleted, which cost 1 ms a sample in one live phase and 39 ms
// in another (36 s of PostgreSQL's time at every 100 ms), taken from the
// service it measures.
func (e *environment) sampleRollupLag(ctx context.Context, schema string) func() time.Duration {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []float64)
	go func() {
		var samples []float64
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			var lag float64
			if err := e.admin.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM clock_timestamp() - min(invalidated_at)), 0)::float8 FROM `+schema+`.rollup_invalidations`).Scan(&lag); err == nil {
				samples = append(samples, lag)
			}
			select {
			case <-ctx.Done():
				done <- samples
				return
			case <-tick.C:
			}
		}
	}()
	return func() time.Duration {
		cancel()
		samples := <-done
		if len(samples) == 0 {
			return 0
		}
		slices.Sort(samples)
		return seconds(samples[(len(samples)*99)/100])
	}
}

// targetRollupRead is issue 14's target for reading a year of daily rows,
// or a day of 5-minute rows, of one station and sensor, with at least
// targetRollupReadRaw raw readings stored.
const (
	targetRollupRead    = 10 * time.Millisecond
	targetRollupReadRaw = 10_000_000
)

// rollupReads is how long the two reads of issue 14 take, at the 99th
// percentile of 50 runs, and how many rows each returned.
type rollupReads struct {
	yearOfDays, dayOf5m time.Duration
	days, fiveMinutes   int
	// raw is how many raw readings the table held.
	raw int
	// rebuild is how long building the rollups with the product's rebuild
	// took, and buckets how many 5-minute buckets it recomputed; zero when
	// the rows were filled directly.
	rebuild time.Duration
	buckets int64
}

// measureRollupReads fills schema's rollup tables, beside what the drain
// left there, with a year of 5-minute, hourly and daily rows of one series
// and times the reads users make most: a year of daily rows, and a day of
// 5-minute rows.
func (e *environment) measureRollupReads(ctx context.Context, schema string) (rollupReads, error) {
	const fill = `INSERT INTO %[1]s.%[2]s (station, sensor, bucket, count, avg, min, max, min_ts, max_ts)
SELECT 'bench-reads', 'temperature', b, 1, 14, 14, 14, b, b
FROM generate_series(timestamptz '2024-01-01', timestamptz '2024-12-31 23:59', interval '%[3]s') AS b`
	for _, t := range []struct{ table, step string }{{"readings_5m", "5 minutes"}, {"readings_1h", "1 hour"}, {"readings_1d", "1 day"}} {
		if _, err := e.admin.Exec(ctx, fmt.Sprintf(fill, schema, t.table, t.step)); err != nil {
			return rollupReads{}, fmt.Errorf("fill %s: %w", t.table, err)
		}
	}
	return e.timeRollupReads(ctx, schema, "bench-reads", "temperature", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
}

// measureGrownRollupReads builds rollups on the growth phase's table in
// schema (a year of preloaded readings, then the drain's), which was
// filled with rollups off, and times the reads of measureRollupReads on a
// preloaded series: the temperature of readStation, a year of daily rows
// and a day of 5-minute rows from its year. It builds them with the
// product's rebuild (rollup.Rebuild, as `sensorhub rollup rebuild
// --station` runs it), timed, for readStation only: a read touches its
// own series only, and every station's would take five times as long
// (6,800–8,500 5-minute buckets/s on a busy 2-core machine: readStation's
// 1.37 million of a 20-million preload took 2 min 42 s, all stations'
// would take some 13 minutes).
func (e *environment) measureGrownRollupReads(ctx context.Context, schema, dsn string) (rollupReads, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return rollupReads{}, err
	}
	defer pool.Close()
	start := time.Now()
	buckets, err := rollup.Rebuild(ctx, rollup.Config{DB: pool, Types: handlers.Builtin()}, rollup.Range{Station: readStation}, nil)
	if err != nil {
		return rollupReads{}, fmt.Errorf("rebuild: %w", err)
	}
	took := time.Since(start)
	yearFrom := benchStart.AddDate(-1, 0, 0)
	r, err := e.timeRollupReads(ctx, schema, readStation, "temperature", yearFrom, yearFrom.AddDate(0, 6, 0))
	r.rebuild, r.buckets = took, buckets
	return r, err
}

// readStation is the station whose rollups the growth phase builds and
// reads.
const readStation = "station-0"

// timeRollupReads analyzes schema's rollup tables and times the reads of
// one series users make most: the daily rows of the year from yearFrom,
// and the 5-minute rows of the day from day.
func (e *environment) timeRollupReads(ctx context.Context, schema, station, sensor string, yearFrom, day time.Time) (rollupReads, error) {
	if _, err := e.admin.Exec(ctx, "ANALYZE "+schema+".readings_5m, "+schema+".readings_1h, "+schema+".readings_1d"); err != nil {
		return rollupReads{}, err
	}
	p99 := func(table string, from, to time.Time) (time.Duration, int, error) {
		q := `SELECT bucket, count, avg, min, max FROM ` + schema + `.` + table + `
WHERE station = $1 AND sensor = $2 AND bucket >= $3 AND bucket < $4 ORDER BY bucket`
		var (
			took []time.Duration
			n    int
		)
		for range 50 {
			start := time.Now()
			rows, err := e.admin.Query(ctx, q, station, sensor, from, to)
			if err != nil {
				return 0, 0, err
			}
			for n = 0; rows.Next(); n++ {
			}
			if rows.Close(); rows.Err() != nil {
				return 0, 0, rows.Err()
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		return took[len(took)*99/100], n, nil
	}
	var (
		r   rollupReads
		err error
	)
	if r.raw, err = e.rows(ctx, schema); err != nil {
		return r, err
	}
	if r.yearOfDays, r.days, err = p99("readings_1d", yearFrom, yearFrom.AddDate(1, 0, 0)); err != nil {
		return r, err
	}
	r.dayOf5m, r.fiveMinutes, err = p99("readings_5m", day, day.AddDate(0, 0, 1))
	return r, err
}
