package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
)

// targetGrowthRatio is the drain into a table holding a year of readings
// against the drain into an empty one (issue 16).
const targetGrowthRatio = 0.8

// shortDrain is the size of the shorter drain that the drain of -n is
// compared with: 300,000 readings, or 3/10 of -n when that is less.
func shortDrain(n int) int {
	return min(300_000, n*3/10)
}

// measureGrowth drains the readings, as measureDrain does with rollups off, into a table
// already holding preload readings of the same stations and sensor types,
// spread over the year before them, loaded with COPY into monthly
// partitions made beforehand, as a year of service would have left them.
// Then it builds the table's rollups and times the rollup reads on it
// (measureGrownRollupReads).
func (e *environment) measureGrowth(ctx context.Context, readings []reading, preload int, env ...string) (result, error) {
	schema, dsn, err := e.newSchema(ctx)
	if err != nil {
		return result{}, err
	}
	env, err = e.rollupsOff(ctx, schema, env)
	if err != nil {
		return result{}, err
	}
	if err := e.preloadTable(ctx, schema, dsn, preload, e.opts.stations); err != nil {
		return result{}, fmt.Errorf("preload %d readings: %w", preload, err)
	}
	res, err := e.measureDrainInto(ctx, schema, dsn, readings, false, env...)
	if err != nil {
		return res, err
	}
	if res.reads, err = e.measureGrownRollupReads(ctx, schema, dsn); err != nil {
		return res, fmt.Errorf("rollup reads: %w", err)
	}
	return res, nil
}

// preloadTable copies n readings of stations stations (station-0, …),
// each sending every sensor type in turn, spread evenly over the year
// before benchStart, into schema's readings table, then vacuums and
// analyzes it: a year of service leaves its months vacuumed, and without
// it autovacuum's first pass over the 20 million copied rows ran during
// the drain, on the same two cores.
func (e *environment) preloadTable(ctx context.Context, schema, dsn string, n, stations int) error {
	from := benchStart.AddDate(-1, 0, 0)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := partition.Ensure(ctx, pool, from, benchStart); err != nil {
		return err
	}
	series := len(sensorTypes) * stations
	perSeries := max((n+series-1)/series, 1) // rounds of every series, the last maybe partial
	step := benchStart.Sub(from) / time.Duration(perSeries)
	i := 0
	copied, err := e.admin.CopyFrom(ctx, pgx.Identifier{schema, "readings"}, readingColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		t := sensorTypes[(i/stations)%len(sensorTypes)]
		ts := from.Add(time.Duration(i/series) * step)
		row := []any{fmt.Sprintf("station-%d", i%stations), t.name, ts, valueAt(t, i/series), "x"}
		i++
		return row, nil
	}))
	if err != nil {
		return err
	}
	if copied != int64(n) {
		return fmt.Errorf("copied %d rows", copied)
	}
	_, err = e.admin.Exec(ctx, "VACUUM (ANALYZE) "+schema+".readings")
	return err
}
