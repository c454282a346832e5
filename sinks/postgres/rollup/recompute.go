package rollup

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// bucket is one (station, sensor, 5-minute bucket) to recompute.
type bucket struct {
	station, sensor string
	start           time.Time
	// appendedFrom is the earliest changed_from of the bucket's taken
	// invalidations: the earliest device time of the readings inserted,
	// changed or deleted in it since it was last computed (migration
	// 0015), or the zero time when unknown (-infinity, recorded before
	// that migration); the bucket is appended to when it is after the
	// row's through, else recomputed whole (see from5mReadings).
	appendedFrom time.Time
}

// compareBuckets orders buckets by key, and one bucket's keys by
// appendedFrom, so that the first of a run is the one to keep.
func compareBuckets(a, b bucket) int {
	return cmp.Or(cmp.Compare(a.station, b.station), cmp.Compare(a.sensor, b.sensor), a.start.Compare(b.start),
		a.appendedFrom.Compare(b.appendedFrom))
}

// sameBucket says whether a and b are the same bucket.
func sameBucket(a, b bucket) bool {
	return a.station == b.station && a.sensor == b.sensor && a.start.Equal(b.start)
}

// recomputer recomputes buckets and their parents within a transaction
// that holds the locks of their stations (lockStations).
type recomputer struct {
	kinds kinds
	// zone is the IANA name of the zone whose days stations without a
	// zone of their own follow.
	zone string
	// wholeParents recomputes every hour and day from its children, never
	// appending to it: Rebuild's, which must not trust the rows it
	// rebuilds.
	wholeParents bool
}

// recompute recomputes the 5-minute buckets of keys from readings (or
// appends to them, see bucket.appendedFrom), with the buckets of the
// vector sensors their sensors weigh, then the hours and days that contain
// them: appended to where every 5-minute bucket of theirs among keys was
// (unless wholeParents), else recomputed from their children. It returns
// how many 5-minute buckets it recomputed.
func (r recomputer) recompute(ctx context.Context, tx pgx.Tx, keys []bucket) (int, error) {
	keys = r.withWeighted(keys)
	if len(keys) == 0 {
		return 0, nil
	}
	if err := withoutJIT(ctx, tx); err != nil {
		return 0, err
	}
	stations, sensors, starts := columnsOf(keys)
	appended := make([]time.Time, len(keys))
	for i, k := range keys {
		appended[i] = k.appendedFrom
	}
	kind, weight := r.kinds.columns(sensors)
	rows, err := tx.Query(ctx, recompute5m, stations, sensors, starts, kind, weight, appended, !r.wholeParents, r.zone)
	if err != nil {
		return 0, fmt.Errorf("rollup: recompute 5-minute buckets: %w", err)
	}
	notAppended, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (bucket, error) {
		var b bucket
		return b, row.Scan(&b.station, &b.sensor, &b.start)
	})
	if err != nil {
		return 0, fmt.Errorf("rollup: recompute 5-minute buckets: %w", err)
	}
	if len(notAppended) > 0 {
		if err := r.recomputeParents(ctx, tx, notAppended); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// recomputeParents recomputes the hours and days of the 5-minute buckets
// of keys from their children.
func (r recomputer) recomputeParents(ctx context.Context, tx pgx.Tx, keys []bucket) error {
	stations, sensors, starts := columnsOf(keys)
	kind, _ := r.kinds.columns(sensors)
	if _, err := tx.Exec(ctx, recompute1h, stations, sensors, starts, kind); err != nil {
		return fmt.Errorf("rollup: recompute hours: %w", err)
	}
	if _, err := tx.Exec(ctx, recompute1d, stations, sensors, starts, kind, r.zone); err != nil {
		return fmt.Errorf("rollup: recompute days: %w", err)
	}
	return nil
}

// columnsOf returns the stations, sensors and starts of keys, as the
// statements' array parameters.
func columnsOf(keys []bucket) (stations, sensors []string, starts []time.Time) {
	stations, sensors, starts = make([]string, len(keys)), make([]string, len(keys)), make([]time.Time, len(keys))
	for i, k := range keys {
		stations[i], sensors[i], starts[i] = k.station, k.sensor, k.start
	}
	return stations, sensors, starts
}

// withWeighted returns keys, sorted and without repeats, and for every key
// of a sensor that weighs vector sensors (wind_speed), the same bucket of
// those (wind_direction), changed from where the weights changed: their
// means change with them. A bucket that appears twice keeps its earliest
// appendedFrom.
func (r recomputer) withWeighted(keys []bucket) []bucket {
	out := slices.Clone(keys)
	for _, k := range keys {
		for _, v := range r.kinds.weighs[k.sensor] {
			out = append(out, bucket{station: k.station, sensor: v, start: k.start, appendedFrom: k.appendedFrom})
		}
	}
	slices.SortFunc(out, compareBuckets)
	return slices.CompactFunc(out, sameBucket)
}

// dayRebuildChunk bounds the 5-minute buckets one statement of
// rebuildDays reads days for.
const dayRebuildChunk = 20000

// rebuildDays recomputes every daily rollup of station from its 5-minute
// buckets, after its zone, and so its days, changed: the days of the old
// zone are deleted first.
func (r recomputer) rebuildDays(ctx context.Context, tx pgx.Tx, station string) error {
	if err := withoutJIT(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM readings_1d WHERE station = $1`, station); err != nil {
		return fmt.Errorf("rollup: rebuild days of %s: %w", station, err)
	}
	rows, err := tx.Query(ctx, `SELECT sensor, bucket FROM readings_5m WHERE station = $1 ORDER BY sensor, bucket`, station)
	if err != nil {
		return fmt.Errorf("rollup: rebuild days of %s: %w", station, err)
	}
	var (
		sensors []string
		starts  []time.Time
		sensor  string
		start   time.Time
	)
	if _, err := pgx.ForEachRow(rows, []any{&sensor, &start}, func() error {
		sensors, starts = append(sensors, sensor), append(starts, start)
		return nil
	}); err != nil {
		return fmt.Errorf("rollup: rebuild days of %s: %w", station, err)
	}
	for from := 0; from < len(sensors); from += dayRebuildChunk {
		to := min(from+dayRebuildChunk, len(sensors))
		kind, _ := r.kinds.columns(sensors[from:to])
		if _, err := tx.Exec(ctx, recompute1d, slices.Repeat([]string{station}, to-from), sensors[from:to], starts[from:to], kind, r.zone); err != nil {
			return fmt.Errorf("rollup: rebuild days of %s: %w", station, err)
		}
	}
	return nil
}

// withoutJIT turns PostgreSQL's JIT compilation off for the rest of tx.
// The recomputation statements read a handful of rows per bucket through
// indexes, but over a readings table of many monthly partitions the
// planner's estimate of them passes jit_above_cost (100,000 by default)
// with a few buckets: compiling them took about 10 s per statement (a
// day of one station, with 2 million readings in 13 partitions), 20 times
// the time of running them, and 4.9 s a statement for 0.1 s of work in
// the worker at 10,000 readings/s from 1,000 stations.
func withoutJIT(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return fmt.Errorf("rollup: turn JIT off: %w", err)
	}
	return nil
}

// lockStations takes, without waiting, the rollup locks of stations in
// tx and returns the stations whose lock it got. One transaction at a
// time recomputes a station's rollups, so that no two recompute one
// bucket, or one hour or day from different 5-minute buckets, at once;
// the lock is not the sink's station lock, so writers never wait for a
// recomputation. Stations share lockShards locks, so that a pass over
// thousands of stations holds a bounded number of advisory locks (they
// take room in PostgreSQL's shared lock table).
func lockStations(ctx context.Context, tx pgx.Tx, stations []string) ([]string, error) {
	var keys []int64
	for _, s := range stations {
		keys = append(keys, shardLock(s))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	rows, err := tx.Query(ctx, `SELECT k FROM unnest($1::int8[]) AS k WHERE pg_try_advisory_xact_lock(k # `+schemaSalt+`)`, keys)
	if err != nil {
		return nil, fmt.Errorf("rollup: lock stations: %w", err)
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("rollup: lock stations: %w", err)
	}
	var out []string
	for _, s := range stations {
		if _, ok := slices.BinarySearch(locked, shardLock(s)); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// lockStation takes station's rollup lock in tx, waiting for it.
func lockStation(ctx context.Context, tx pgx.Tx, station string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1 # `+schemaSalt+`)`, shardLock(station)); err != nil {
		return fmt.Errorf("rollup: lock station %s: %w", station, err)
	}
	return nil
}

// schemaSalt mixes the schema of the tables into a lock ID, in SQL:
// advisory locks are per database, and deployments (or tests) in other
// schemas of one database must not skip each other's stations.
const schemaSalt = `hashtextextended(current_schema(), 0)`

// lockShards is how many rollup locks the stations share.
const lockShards = 256

// shardLock is the advisory lock ID of a station's rollups. It must not
// change between releases: replicas of different versions take the same
// locks.
func shardLock(station string) int64 {
	h := fnv.New64a()
	h.Write([]byte(station))
	shard := h.Sum64() % lockShards
	h = fnv.New64a()
	fmt.Fprintf(h, "sensorhub:rollup:%d", shard)
	return int64(h.Sum64())
}
