package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// rebuildWindow is how much device time one Rebuild transaction covers.
const rebuildWindow = 24 * time.Hour

// Range is what Rebuild recomputes: the buckets of Station (every station
// when empty) that hold device times in [From, To); a zero From or To is
// open.
type Range struct {
	Station  string
	From, To time.Time
}

// Progress is how far a Rebuild got, after each transaction.
type Progress struct {
	// Station is the station being rebuilt, the Station-th of Stations.
	Station            string
	StationN, Stations int
	// Done is how much of the station's range is rebuilt, in [0, 1].
	Done float64
	// Buckets counts the 5-minute buckets recomputed so far, with their
	// hours and days, over all stations.
	Buckets int64
}

// Rebuild recomputes from readings every rollup in r: the 5-minute buckets
// that hold readings or rollups there, and their hours and days. It is
// idempotent and safe to run while Workers run: it takes each station's
// rollup lock, one day of device time per transaction. Buckets past
// cfg.Retention's horizon are left as they are. progress, if not nil, is
// called after each transaction. It returns how many 5-minute buckets it
// recomputed.
func Rebuild(ctx context.Context, cfg Config, r Range, progress func(Progress)) (int64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	cfg = cfg.withDefaults()
	rc := recomputer{kinds: newKinds(cfg.Types), zone: cfg.Zone, wholeParents: true}
	stations, err := rebuildStations(ctx, cfg.DB, r.Station)
	if err != nil {
		return 0, err
	}
	var total int64
	for i, station := range stations {
		from, to, ok, err := extent(ctx, cfg.DB, station, r)
		if err != nil {
			return total, err
		}
		if cfg.Retention > 0 {
			// The first bucket that starts at the horizon or after.
			horizon := time.Now().Add(-cfg.Retention)
			from = maxTime(from, horizon.Add(5*time.Minute-time.Nanosecond).Truncate(5*time.Minute))
		}
		for start := from; ok && start.Before(to); start = start.Add(rebuildWindow) {
			end := minTime(start.Add(rebuildWindow), to)
			n, err := rebuildWindowOf(ctx, cfg.DB, rc, station, start, end)
			if err != nil {
				return total, err
			}
			total += int64(n)
			if progress != nil {
				progress(Progress{Station: station, StationN: i + 1, Stations: len(stations),
					Done: float64(end.Sub(from)) / float64(to.Sub(from)), Buckets: total})
			}
		}
		if progress != nil && !(ok && from.Before(to)) {
			progress(Progress{Station: station, StationN: i + 1, Stations: len(stations), Done: 1, Buckets: total})
		}
	}
	return total, nil
}

// rebuildStations returns station, or every station when it is empty.
func rebuildStations(ctx context.Context, db DB, station string) ([]string, error) {
	if station != "" {
		return []string{station}, nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollup: rebuild: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT id FROM stations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("rollup: rebuild: list stations: %w", err)
	}
	stations, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("rollup: rebuild: list stations: %w", err)
	}
	return stations, nil
}

// extent returns the device times of station's readings and rollups
// within r, as [from, to); ok is false when there are none.
func extent(ctx context.Context, db DB, station string, r Range) (from, to time.Time, ok bool, err error) {
	var lo, hi *time.Time
	err = db.QueryRow(ctx, `SELECT min(t), max(t) FROM (
  SELECT min(ts) AS t FROM readings WHERE station = $1 UNION ALL SELECT max(ts) FROM readings WHERE station = $1
  UNION ALL SELECT min(bucket) FROM readings_5m WHERE station = $1 UNION ALL SELECT max(bucket) FROM readings_5m WHERE station = $1
  UNION ALL SELECT min(bucket) FROM readings_1d WHERE station = $1 UNION ALL SELECT max(bucket) FROM readings_1d WHERE station = $1) s`,
		station).Scan(&lo, &hi)
	if err != nil {
		return time.Time{}, time.Time{}, false, fmt.Errorf("rollup: rebuild %s: find its readings: %w", station, err)
	}
	if lo == nil {
		return time.Time{}, time.Time{}, false, nil
	}
	from, to = *lo, hi.Add(time.Microsecond)
	if !r.From.IsZero() {
		from = maxTime(from, r.From)
	}
	if !r.To.IsZero() {
		to = minTime(to, r.To)
	}
	return from, to, from.Before(to), nil
}

// windowKeys are the 5-minute buckets of station $1 in [$2, $3) to
// recompute: those holding readings, and those where a rollup of any
// length starts, so that a rollup whose readings are gone is deleted.
const windowKeys = `SELECT sensor, date_bin('5 minutes', ts, 'epoch') FROM readings WHERE station = $1 AND ts >= $2 AND ts < $3
UNION SELECT sensor, bucket FROM readings_5m WHERE station = $1 AND bucket >= date_bin('5 minutes', $2, 'epoch') AND bucket < $3
UNION SELECT sensor, bucket FROM readings_1h WHERE station = $1 AND bucket >= date_bin('5 minutes', $2, 'epoch') AND bucket < $3
UNION SELECT sensor, date_bin('5 minutes', bucket, 'epoch') FROM readings_1d WHERE station = $1 AND bucket >= date_bin('5 minutes', $2, 'epoch') AND bucket < $3`

// misaligned deletes station $1's rollups in [$2, $3) that do not start
// a bucket of their table, e.g. days of a zone the station no longer has
// ($4 is the default zone): recomputing buckets would never reach them.
const misaligned = `WITH z AS (SELECT coalesce((SELECT timezone FROM stations WHERE id = $1), $4::text) AS tz),
m5 AS (DELETE FROM readings_5m WHERE station = $1 AND bucket >= $2 AND bucket < $3 AND bucket <> date_bin('5 minutes', bucket, 'epoch')),
h AS (DELETE FROM readings_1h WHERE station = $1 AND bucket >= $2 AND bucket < $3 AND bucket <> date_bin('1 hour', bucket, 'epoch'))
DELETE FROM readings_1d WHERE station = $1 AND bucket >= $2 AND bucket < $3 AND bucket <> date_trunc('day', bucket, (SELECT tz FROM z))`

// rebuildWindowOf recomputes station's buckets in [from, to) in one
// transaction under the station's rollup lock.
func rebuildWindowOf(ctx context.Context, db DB, rc recomputer, station string, from, to time.Time) (int, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("rollup: rebuild: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := lockStation(ctx, tx, station); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, misaligned, station, from, to, rc.zone); err != nil {
		return 0, fmt.Errorf("rollup: rebuild %s: %w", station, err)
	}
	rows, err := tx.Query(ctx, windowKeys, station, from, to)
	if err != nil {
		return 0, fmt.Errorf("rollup: rebuild %s: %w", station, err)
	}
	var keys []bucket
	k := bucket{station: station}
	if _, err := pgx.ForEachRow(rows, []any{&k.sensor, &k.start}, func() error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("rollup: rebuild %s: %w", station, err)
	}
	n, err := rc.recompute(ctx, tx, keys)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("rollup: rebuild: commit: %w", err)
	}
	return n, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
