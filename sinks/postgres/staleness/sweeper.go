package staleness

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
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// DefaultSweepInterval is how often a Sweeper looks for stale series when
// Config.SweepInterval is zero.
const DefaultSweepInterval = 5 * time.Second

// sweepBatch is the most series one sweep transaction flips; a sweep runs
// transactions until one flips fewer, so a mass outage is announced in
// bounded transactions.
const sweepBatch = 500

// DB is what a Sweeper needs from PostgreSQL; *pgxpool.Pool satisfies it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Querier
}

// Config configures a Sweeper. DB is required; every other zero field takes
// the default its comment names.
type Config struct {
	// DB holds sensor_status and the outbox. Required; never closed.
	DB DB
	// Policy decides when a series is stale; it should be the Tracker's.
	Policy Policy
	// SweepInterval is how often the Sweeper looks for stale series: a
	// series is announced at most this long after it became stale.
	// Default DefaultSweepInterval (5 s).
	SweepInterval time.Duration
	// Logger receives lifecycle logs, one Info per series gone stale and a
	// Warn per failed sweep. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("staleness: Config.DB is nil"))
	}
	if c.SweepInterval < 0 {
		errs = append(errs, fmt.Errorf("staleness: Config.SweepInterval %s: must not be negative", c.SweepInterval))
	}
	return errors.Join(append(errs, c.Policy.Validate())...)
}

// Stats is a snapshot of a Sweeper's work.
type Stats struct {
	// Sweeps counts completed sweeps.
	Sweeps uint64
	// Failed counts sweeps that failed; each is tried again a
	// SweepInterval later.
	Failed uint64
	// Stale counts the sensor.stale events this Sweeper committed.
	Stale uint64
	// Series is the state of every series at MeasuredAt, ordered by
	// station and sensor.
	Series []Status
	// MeasuredAt is when Series was read, after a sweep; zero before the
	// first read succeeded.
	MeasuredAt time.Time
}

// Sweeper announces sensor.stale for every series silent for longer than
// its expected interval times Policy.After. Every replica may run one: a
// series being announced by one is skipped by the others (FOR UPDATE SKIP
// LOCKED), and the stale flag commits with the event, so each transition
// is announced once across replicas and restarts.
//
// A Sweeper counts silence from its first sweep at the earliest: after the
// service was down, series get a full threshold to report again before
// they are called stale, rather than all at once on start-up.
type Sweeper struct {
	cfg Config

	sweeps, failed, stale atomic.Uint64

	mu       sync.Mutex
	since    time.Time // the database's clock at the first sweep; zero before it
	series   []Status
	measured time.Time

	runner background.Runner
}

// NewSweeper returns a Sweeper for cfg, not started.
func NewSweeper(cfg Config) (*Sweeper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Policy = cfg.Policy.withDefaults()
	cfg.SweepInterval = cmp.Or(cfg.SweepInterval, DefaultSweepInterval)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sweeper{cfg: cfg}, nil
}

// Start sweeps every SweepInterval in the background, the first time at
// once, and returns at once, even while the database is unreachable. A
// Sweeper starts once.
func (s *Sweeper) Start(ctx context.Context) error {
	if err := s.runner.Start(ctx, s.loop); err != nil {
		return fmt.Errorf("staleness: sweeper: %w", err)
	}
	s.cfg.Logger.Info("staleness: sweeper started", "after", s.cfg.Policy.After, "sweep_interval", s.cfg.SweepInterval)
	return nil
}

// Stop stops sweeping and waits for a sweep in flight, or until ctx ends.
// A sweep cut short commits nothing; the next start repeats it.
func (s *Sweeper) Stop(ctx context.Context) error {
	if err := s.runner.Stop(ctx); err != nil {
		return fmt.Errorf("staleness: stop: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters and of the last measurement.
func (s *Sweeper) Stats() Stats {
	s.mu.Lock()
	st := Stats{Series: s.series, MeasuredAt: s.measured}
	s.mu.Unlock()
	st.Sweeps, st.Failed, st.Stale = s.sweeps.Load(), s.failed.Load(), s.stale.Load()
	return st
}

func (s *Sweeper) loop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	for {
		s.sweepAndMeasure(ctx)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Sweeper) sweepAndMeasure(ctx context.Context) {
	_, err := s.Sweep(ctx)
	if err == nil {
		var series []Status
		if series, err = List(ctx, s.cfg.DB, s.cfg.Policy); err == nil {
			s.mu.Lock()
			s.series, s.measured = series, time.Now()
			s.mu.Unlock()
		}
	}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		s.failed.Add(1)
		s.cfg.Logger.Warn("staleness: sweep failed, trying again later", "error", err, "retry_in", s.cfg.SweepInterval)
	default:
		s.sweeps.Add(1)
	}
}

// sweepQuery flips up to $5 silent series stale and returns them. $1 is
// the sweeper's first sweep (silence counts from it at the earliest), $2
// Policy.After, $3 and $4 the minimum and default interval in seconds. The
// expected interval is Policy.expected's. A row a sink transaction is
// updating is locked, and skipped: it is getting a new reading. A row
// another sweeper flipped meanwhile is re-checked by FOR UPDATE and no
// longer matches NOT stale.
const sweepQuery = `WITH due AS (
  SELECT station, sensor
  FROM sensor_status s
  WHERE NOT stale AND last_received_at IS NOT NULL
    AND now() - greatest(last_received_at, $1) > make_interval(secs => $2 * coalesce(
      s.interval_s,
      CASE WHEN s.learned_interval_s IS NOT NULL THEN greatest(s.learned_interval_s, $3) END, -- greatest skips NULLs
      $4))
  ORDER BY station, sensor
  LIMIT $5
  FOR UPDATE SKIP LOCKED
)
UPDATE sensor_status s SET stale = true, transitions = s.transitions + 1, changed_at = now()
FROM due d
WHERE (s.station, s.sensor) = (d.station, d.sensor)
RETURNING s.station, s.sensor, s.last_ts, s.last_received_at, s.interval_s, s.learned_interval_s, s.transitions, s.changed_at`

// Sweep announces the series that are stale now and not yet announced,
// and returns how many. Each batch of them commits in one transaction with
// its sensor.stale events. The Sweeper calls it every SweepInterval; Sweep
// is safe to call concurrently, also from other processes.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.sweepBatch(ctx)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

func (s *Sweeper) sweepBatch(ctx context.Context) (int, error) {
	tx, err := s.cfg.DB.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("staleness: sweep: begin: %w", err)
	}
	// After Commit, Rollback is a no-op.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	since, err := s.firstSweep(ctx, tx)
	if err != nil {
		return 0, err
	}
	p := s.cfg.Policy
	rows, err := tx.Query(ctx, sweepQuery, since, p.After, p.MinInterval.Seconds(), p.DefaultInterval.Seconds(), sweepBatch)
	if err != nil {
		return 0, fmt.Errorf("staleness: sweep: %w", err)
	}
	events, payloads, err := collectEvents(rows, sensorhub.EventSensorStale, p)
	if err != nil {
		return 0, fmt.Errorf("staleness: sweep: %w", err)
	}
	if err := outbox.Insert(ctx, tx, events); err != nil {
		return 0, fmt.Errorf("staleness: sweep: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("staleness: sweep: commit: %w", err)
	}
	s.stale.Add(uint64(len(events)))
	for _, p := range payloads {
		s.cfg.Logger.Info("staleness: sensor stale", "station", p.Station, "sensor", p.Sensor,
			"last_received_at", p.LastReceivedAt, "expected_interval_s", p.ExpectedIntervalS)
	}
	return len(events), nil
}

// firstSweep returns the database's clock at the Sweeper's first sweep,
// reading it within tx the first time.
func (s *Sweeper) firstSweep(ctx context.Context, tx pgx.Tx) (time.Time, error) {
	s.mu.Lock()
	since := s.since
	s.mu.Unlock()
	if !since.IsZero() {
		return since, nil
	}
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&since); err != nil {
		return time.Time{}, fmt.Errorf("staleness: sweep: read the clock: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() { // a concurrent Sweep may have been first
		s.since = since
	}
	return s.since, nil
}
