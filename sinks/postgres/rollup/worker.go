package rollup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorhub/sensorhub/internal/background"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Defaults of Config.
const (
	// DefaultInterval is how often an idle Worker looks for pending
	// invalidations.
	DefaultInterval = time.Second
	// DefaultBatch is how many 5-minute buckets one Worker transaction
	// recomputes at most.
	DefaultBatch = 2000
	// DefaultZone is the zone of the days of stations without one, as
	// SENSORHUB_TIMEZONE's default.
	DefaultZone = "UTC"
)

// DB is what a Worker needs from PostgreSQL; *pgxpool.Pool satisfies it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Config configures a Worker and Rebuild. DB is required; every other zero
// field takes the default its comment names.
type Config struct {
	// DB holds readings, the rollup tables and the invalidation log of
	// migration 0009. Required; never closed.
	DB DB
	// Types are the registered sensor types, whose Aggregation says how
	// each rolls up. A sensor none of them names rolls up as instant.
	Types []sensorhub.SensorType
	// Zone is the IANA name of the zone whose days the daily rollups of
	// stations without a zone of their own follow: SENSORHUB_TIMEZONE.
	// Default DefaultZone (UTC).
	Zone string
	// Retention is how long raw readings are kept (SENSORHUB_RAW_RETENTION):
	// 5-minute buckets that start before now − Retention are never
	// recomputed, their invalidations are dropped and counted. Zero, the
	// default, keeps readings forever.
	Retention time.Duration
	// Interval is how often an idle Worker looks for pending
	// invalidations, and so about how late a rollup is at most after a
	// change. Default DefaultInterval (1 s).
	Interval time.Duration
	// Batch is how many 5-minute buckets one transaction recomputes at
	// most. Default DefaultBatch (2000).
	Batch int
	// Logger receives lifecycle logs and a Warn per failed pass. Default
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("rollup: Config.DB is nil"))
	}
	if c.Zone != "" {
		if _, err := time.LoadLocation(c.Zone); err != nil || c.Zone == "Local" {
			errs = append(errs, fmt.Errorf("rollup: Config.Zone %q is not an IANA zone name", c.Zone))
		}
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("rollup: Config.Retention %s is negative", c.Retention))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("rollup: Config.Interval %s is negative", c.Interval))
	}
	if c.Batch < 0 {
		errs = append(errs, fmt.Errorf("rollup: Config.Batch %d is negative", c.Batch))
	}
	for _, t := range c.Types {
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rollup: Config.Types: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.Zone = cmp.Or(c.Zone, DefaultZone)
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	c.Batch = cmp.Or(c.Batch, DefaultBatch)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats is a snapshot of a Worker's work.
type Stats struct {
	// Passes counts completed passes over the invalidation log.
	Passes uint64
	// Failed counts failed passes; each is tried again an Interval later.
	Failed uint64
	// Recomputed counts the 5-minute buckets this Worker recomputed, with
	// their hours and days.
	Recomputed uint64
	// Dropped counts invalidations of buckets past the retention horizon,
	// dropped without recomputing.
	Dropped uint64
	// Lag is the age of the oldest pending invalidation or day rebuild at
	// MeasuredAt, across every Worker on the database; zero when none is
	// pending.
	Lag time.Duration
	// MeasuredAt is when Lag was measured; zero before the first
	// measurement succeeded.
	MeasuredAt time.Time
}

// Worker keeps the rollup tables right: in one transaction it deletes the
// invalidations of the 5-minute buckets that changes to readings
// invalidated (migration 0009's triggers record them in the same
// transaction as every change), recomputes the buckets from readings (or
// appends to them, migration 0011), their hours and station-local days.
// Every replica may run one: a station's invalidations are taken by one
// transaction at a time (an advisory lock per station, of 256 the stations
// share), and a change committed while a pass runs records an invalidation
// the pass does not see (migration 0017), so a concurrent change is never
// lost.
type Worker struct {
	cfg        Config
	recomputer recomputer

	passes, failed, recomputed, dropped atomic.Uint64

	mu       sync.Mutex
	lag      time.Duration
	measured time.Time
	// zoneChecked is set once the default zone was compared with the one
	// the daily rollups were computed in.
	zoneChecked bool

	runner background.Runner
}

// NewWorker returns a Worker for cfg, not started.
func NewWorker(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Worker{cfg: cfg, recomputer: recomputer{kinds: newKinds(cfg.Types), zone: cfg.Zone}}, nil
}

// Start works in the background until Stop and returns at once, even while
// the database is unreachable. A Worker starts once.
func (w *Worker) Start(ctx context.Context) error {
	if err := w.runner.Start(ctx, w.loop); err != nil {
		return fmt.Errorf("rollup: worker: %w", err)
	}
	w.cfg.Logger.Info("rollup: worker started", "interval", w.cfg.Interval, "zone", w.cfg.Zone, "retention", w.cfg.Retention)
	return nil
}

// Stop stops the Worker and waits for the pass in flight, or until ctx
// ends. A pass cut short commits nothing; its invalidations stay pending.
func (w *Worker) Stop(ctx context.Context) error {
	if err := w.runner.Stop(ctx); err != nil {
		return fmt.Errorf("rollup: stop: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters and of the last measurement.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	st := Stats{Lag: w.lag, MeasuredAt: w.measured}
	w.mu.Unlock()
	st.Passes, st.Failed, st.Recomputed, st.Dropped = w.passes.Load(), w.failed.Load(), w.recomputed.Load(), w.dropped.Load()
	return st
}

// Check fails when the rollup lag exceeds maxLag, or when it could not be
// measured for longer than maxLag: a health check.
func (w *Worker) Check(maxLag time.Duration) error {
	st := w.Stats()
	switch {
	case st.MeasuredAt.IsZero():
		return nil // not measured yet; the database's own check tells why
	case time.Since(st.MeasuredAt) > maxLag:
		return fmt.Errorf("rollup: lag not measured for %s", time.Since(st.MeasuredAt).Round(time.Second))
	case st.Lag > maxLag:
		return fmt.Errorf("rollup: lag %s exceeds %s", st.Lag.Round(time.Second), maxLag)
	}
	return nil
}

func (w *Worker) loop(ctx context.Context) {
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	for {
		// A pass that may have left invalidations pending is followed at
		// once by the next; the lag is measured at most once per Interval.
		for {
			_, more, err := w.pass(ctx)
			if err != nil && ctx.Err() == nil {
				w.failed.Add(1)
				w.cfg.Logger.Warn("rollup: pass failed, trying again later", "error", err, "retry_in", w.cfg.Interval)
			}
			if err != nil || !more || ctx.Err() != nil {
				break
			}
			select {
			case <-tick.C:
				w.measure(ctx)
			default:
			}
		}
		w.measure(ctx)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// lagQuery is the age of the oldest pending invalidation or day rebuild,
// in seconds; 0 when none is pending.
const lagQuery = `SELECT coalesce(extract(epoch FROM now() - least(
  (SELECT min(invalidated_at) FROM rollup_invalidations),
  (SELECT min(requested_at) FROM rollup_day_rebuilds)))::float8, 0)`

func (w *Worker) measure(ctx context.Context) {
	var seconds float64
	if err := w.cfg.DB.QueryRow(ctx, lagQuery).Scan(&seconds); err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.Debug("rollup: lag not measured", "error", err)
		}
		return
	}
	w.mu.Lock()
	w.lag, w.measured = time.Duration(max(seconds, 0)*float64(time.Second)), time.Now()
	w.mu.Unlock()
}

// Work runs one pass, in one transaction: it takes the rollup locks of the
// stations of the oldest pending invalidations and day rebuilds, deletes
// the invalidations of up to Batch buckets of those stations (take),
// recomputes the buckets and their parents (dropping those past the
// retention horizon), rebuilds the days of those stations whose zone
// changed, and commits. A change to a bucket committed after the pass
// took its invalidations records one of its own, which the next pass
// takes. It returns how many 5-minute buckets it took. The Worker calls
// it in a loop; it is safe to call concurrently, also from other
// processes.
func (w *Worker) Work(ctx context.Context) (int, error) {
	n, _, err := w.pass(ctx)
	return n, err
}

// pass is Work, and also says whether more invalidations may be pending
// than the pass could take.
func (w *Worker) pass(ctx context.Context) (n int, more bool, err error) {
	if err := w.checkZone(ctx); err != nil {
		return 0, false, err
	}
	tx, err := w.cfg.DB.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("rollup: begin: %w", err)
	}
	// After Commit, Rollback is a no-op.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	stations, err := candidates(ctx, tx, w.cfg.Batch)
	if err != nil || len(stations) == 0 {
		return 0, false, err
	}
	if stations, err = lockStations(ctx, tx, stations); err != nil || len(stations) == 0 {
		return 0, false, err
	}
	taken, more, err := take(ctx, tx, stations, w.cfg.Batch)
	if err != nil {
		return 0, false, err
	}
	rebuilds, rebuildSeqs, err := dayRebuilds(ctx, tx, stations)
	if err != nil {
		return 0, false, err
	}
	fresh, dropped := w.pastHorizon(taken)
	recomputed, err := w.recomputer.recompute(ctx, tx, fresh)
	if err != nil {
		return 0, false, err
	}
	for _, s := range rebuilds {
		if err := w.recomputer.rebuildDays(ctx, tx, s); err != nil {
			return 0, false, err
		}
	}
	if err := releaseRebuilds(ctx, tx, rebuilds, rebuildSeqs); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, fmt.Errorf("rollup: commit: %w", err)
	}
	w.passes.Add(1)
	w.recomputed.Add(uint64(recomputed))
	w.dropped.Add(uint64(dropped))
	for _, s := range rebuilds {
		w.cfg.Logger.Info("rollup: daily rollups rebuilt for a new zone", "station", s)
	}
	return len(taken), more, nil
}

// pastHorizon returns the buckets of keys that start at the retention
// horizon or after, to recompute, and how many start before it: those are
// taken without recomputing, since their raw readings may be gone.
func (w *Worker) pastHorizon(keys []bucket) (fresh []bucket, dropped int) {
	if w.cfg.Retention == 0 {
		return keys, 0
	}
	horizon := time.Now().Add(-w.cfg.Retention)
	for _, k := range keys {
		if k.start.Before(horizon) {
			dropped++
		} else {
			fresh = append(fresh, k)
		}
	}
	return fresh, dropped
}

// candidates returns the stations of the oldest pending invalidations and
// day rebuilds.
func candidates(ctx context.Context, tx pgx.Tx, batch int) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT station FROM (
  (SELECT station FROM rollup_invalidations ORDER BY invalidated_at LIMIT $1)
  UNION ALL
  (SELECT station FROM rollup_day_rebuilds ORDER BY requested_at LIMIT $1)) s
ORDER BY station`, batch)
	if err != nil {
		return nil, fmt.Errorf("rollup: find pending invalidations: %w", err)
	}
	stations, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("rollup: find pending invalidations: %w", err)
	}
	return stations, nil
}

// takeQuery deletes the invalidations of the buckets of the oldest $2
// invalidations of the stations $1, all of each bucket's, and returns the
// buckets with the earliest changed_from of each (-infinity, recorded
// before migration 0015, as the zero time), and how many invalidations
// the oldest held. Invalidations committed after the DELETE began are not
// visible to it and stay pending (migration 0017).
const takeQuery = `WITH oldest AS (
  SELECT station, sensor, bucket FROM rollup_invalidations
  WHERE station = ANY($1) ORDER BY invalidated_at LIMIT $2
), taken AS (
  DELETE FROM rollup_invalidations i USING (SELECT DISTINCT station, sensor, bucket FROM oldest) o
  WHERE (i.station, i.sensor, i.bucket) = (o.station, o.sensor, o.bucket)
  RETURNING i.station, i.sensor, i.bucket, i.changed_from
)
SELECT station, sensor, bucket, greatest(min(changed_from), '0001-01-01T00:00:00Z'), (SELECT count(*) FROM oldest)
FROM taken GROUP BY station, sensor, bucket`

// take deletes the invalidations of up to batch buckets of stations, the
// oldest first, and returns the buckets, each with its appendedFrom, and
// whether more may be pending: the oldest invalidations it looked at were
// batch, as many as it looks at.
//
// takeQuery is planned with its parameters every time
// (pgx.QueryExecModeCacheDescribe), never with a generic plan: PostgreSQL
// looks the stations of "station = ANY($1)" up in a hash table only when
// the array is known at planning, and otherwise compares each invalidation
// it scans with every station in turn. Live from 1,000 stations a pass
// locks about 1,000: in BenchmarkLivePass the take of 2,000 buckets took
// 44 ms with a generic plan, 21 ms planned each time, planning 0.5 ms.
func take(ctx context.Context, tx pgx.Tx, stations []string, batch int) (taken []bucket, more bool, err error) {
	rows, err := tx.Query(ctx, takeQuery, pgx.QueryExecModeCacheDescribe, stations, batch)
	if err != nil {
		return nil, false, fmt.Errorf("rollup: take invalidations: %w", err)
	}
	var (
		k      bucket
		oldest int
	)
	if _, err := pgx.ForEachRow(rows, []any{&k.station, &k.sensor, &k.start, &k.appendedFrom, &oldest}, func() error {
		taken = append(taken, k)
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("rollup: take invalidations: %w", err)
	}
	return taken, oldest == batch, nil
}

// dayRebuilds returns the pending day rebuilds of stations with their seq.
func dayRebuilds(ctx context.Context, tx pgx.Tx, stations []string) ([]string, []int64, error) {
	if len(stations) == 0 {
		return nil, nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT station, seq FROM rollup_day_rebuilds WHERE station = ANY($1) ORDER BY station`, stations)
	if err != nil {
		return nil, nil, fmt.Errorf("rollup: read day rebuilds: %w", err)
	}
	var (
		out  []string
		seqs []int64
		s    string
		seq  int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&s, &seq}, func() error {
		out, seqs = append(out, s), append(seqs, seq)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("rollup: read day rebuilds: %w", err)
	}
	return out, seqs, nil
}

// releaseRebuilds deletes the day rebuilds done, each only if its seq is
// still the one read: a zone changed since bumped it and keeps it pending.
// A rebuild that a writer is changing right now is locked, and skipped
// rather than waited for: it is about to get a new seq anyway, and a
// worker that never waits for a writer cannot deadlock with one.
func releaseRebuilds(ctx context.Context, tx pgx.Tx, rebuilds []string, rebuildSeqs []int64) error {
	if len(rebuilds) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM rollup_day_rebuilds d WHERE ctid IN (
  SELECT d.ctid FROM rollup_day_rebuilds d
  JOIN unnest($1::text[], $2::int8[]) AS k(station, seq) ON (d.station, d.seq) = (k.station, k.seq)
  FOR UPDATE OF d SKIP LOCKED)`, rebuilds, rebuildSeqs); err != nil {
		return fmt.Errorf("rollup: delete day rebuilds: %w", err)
	}
	return nil
}

// checkZone compares, once per Worker, the default zone with the one the
// daily rollups of stations without a zone were computed in, and queues
// their days for a rebuild when it changed.
func (w *Worker) checkZone(ctx context.Context) error {
	w.mu.Lock()
	checked := w.zoneChecked
	w.mu.Unlock()
	if checked {
		return nil
	}
	tx, err := w.cfg.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rollup: check default zone: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var before string
	err = tx.QueryRow(ctx, `SELECT default_timezone FROM rollup_settings FOR UPDATE`).Scan(&before)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// The first worker: no daily rollup was computed in another zone.
		_, err = tx.Exec(ctx, `INSERT INTO rollup_settings (default_timezone) VALUES ($1) ON CONFLICT DO NOTHING`, w.cfg.Zone)
	case err == nil && before != w.cfg.Zone:
		if _, err = tx.Exec(ctx, `UPDATE rollup_settings SET default_timezone = $1`, w.cfg.Zone); err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO rollup_day_rebuilds (station) SELECT id FROM stations WHERE timezone IS NULL ORDER BY id
ON CONFLICT (station) DO UPDATE SET seq = EXCLUDED.seq`)
		}
		if err == nil {
			w.cfg.Logger.Info("rollup: default zone changed, rebuilding the days of the stations without a zone", "from", before, "to", w.cfg.Zone)
		}
	}
	if err != nil {
		return fmt.Errorf("rollup: check default zone: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rollup: check default zone: commit: %w", err)
	}
	w.mu.Lock()
	w.zoneChecked = true
	w.mu.Unlock()
	return nil
}
