package partition

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sensorhub/sensorhub/internal/background"

	"github.com/jackc/pgx/v5"
)

// Maintainer defaults, used where a Config field is zero.
const (
	DefaultInterval    = 10 * time.Minute
	DefaultMonthsAhead = 2
)

// Config configures a Maintainer. DB is required; every other zero field
// takes the default its comment names.
type Config struct {
	// DB holds readings. Required; never closed by the Maintainer.
	DB DB
	// Retention is how long raw readings are kept, in device time: a
	// partition whose whole range is older than now - Retention is
	// dropped, and rows that old leave the default partition. A partition
	// straddling the horizon stays until its last instant passes it. Zero
	// keeps every reading forever, the default; it must not be negative.
	Retention time.Duration
	// Interval is how often the Maintainer runs. Default DefaultInterval
	// (10 min).
	Interval time.Duration
	// MonthsAhead is how many months after the current one get their
	// partitions ahead of time. Default DefaultMonthsAhead (2); it must
	// not be negative.
	MonthsAhead int
	// Logger receives lifecycle logs, an Info per partition created or
	// dropped and a Warn per failed run. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("partition: Config.DB is nil"))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("partition: Config.Retention %s: must not be negative", c.Retention))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("partition: Config.Interval %s: must not be negative", c.Interval))
	}
	if c.MonthsAhead < 0 {
		errs = append(errs, fmt.Errorf("partition: Config.MonthsAhead %d: must not be negative", c.MonthsAhead))
	}
	return errors.Join(errs...)
}

// Report is what one run of a Maintainer changed.
type Report struct {
	// Created names the partitions created, Dropped those dropped.
	Created, Dropped []string
	// Expired counts the rows older than the horizon deleted from the
	// default partition.
	Expired int64
}

// Maintainer keeps the partition layout of readings: on Start and every
// Interval it creates the partitions of the current month and of
// MonthsAhead more, moves the rows of the default partition into
// partitions of their months, and, with a Retention, drops what is older
// than the horizon. Every replica may run one: each change is a
// transaction under the layout's advisory lock, and finds the work done
// when another replica did it first.
type Maintainer struct {
	cfg Config
	log *slog.Logger

	runner background.Runner
	mu     sync.Mutex
	last   error // of the last run
}

// NewMaintainer returns a Maintainer for cfg, not started.
func NewMaintainer(cfg Config) (*Maintainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	if cfg.MonthsAhead == 0 {
		cfg.MonthsAhead = DefaultMonthsAhead
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Maintainer{cfg: cfg, log: cfg.Logger}, nil
}

// Start runs the Maintainer in the background, at once and then every
// Interval, and returns at once. Stop stops it. A Maintainer starts once.
func (m *Maintainer) Start(ctx context.Context) error {
	if err := m.runner.Start(ctx, m.loop); err != nil {
		return fmt.Errorf("partition: maintainer: %w", err)
	}
	m.log.Info("partition: maintainer started", "interval", m.cfg.Interval, "retention", m.cfg.Retention, "months_ahead", m.cfg.MonthsAhead)
	return nil
}

// Stop stops the Maintainer and waits for the run in progress, or until
// ctx ends.
func (m *Maintainer) Stop(ctx context.Context) error {
	if err := m.runner.Stop(ctx); err != nil {
		return fmt.Errorf("partition: stop maintainer: %w", err)
	}
	return nil
}

// Err returns the error of the last run, nil when it succeeded or none
// ran yet.
func (m *Maintainer) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (m *Maintainer) loop(ctx context.Context) {
	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	for {
		rep, err := m.Run(ctx, time.Now())
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		m.last = err
		m.mu.Unlock()
		switch {
		case IsPermissionDenied(err):
			m.log.Warn("partition: this role may not change the partitions (it does not own readings); run `sensorhub partition maintain` as the owner",
				"error", err, "next_in", m.cfg.Interval)
		case err != nil:
			m.log.Warn("partition: maintenance failed, trying again later", "error", err, "next_in", m.cfg.Interval)
		}
		for _, name := range rep.Created {
			m.log.Info("partition: created", "partition", name)
		}
		for _, name := range rep.Dropped {
			m.log.Info("partition: dropped, older than the retention horizon", "partition", name, "retention", m.cfg.Retention)
		}
		if rep.Expired > 0 {
			m.log.Info("partition: rows older than the retention horizon deleted from the default partition", "rows", rep.Expired)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

// Run does one round of maintenance as of now: partitions ahead, rows of
// the default partition into their months, then retention. It goes on
// past a failed step and returns what it changed with every error.
func (m *Maintainer) Run(ctx context.Context, now time.Time) (Report, error) {
	var (
		rep  Report
		errs []error
	)
	horizon := time.Time{}
	if m.cfg.Retention > 0 {
		horizon = now.Add(-m.cfg.Retention)
	}
	created, err := Ensure(ctx, m.cfg.DB, now, monthOf(now).AddDate(0, m.cfg.MonthsAhead+1, 0))
	rep.Created = append(rep.Created, created...)
	errs = append(errs, err)

	months, err := defaultMonths(ctx, m.cfg.DB, horizon)
	errs = append(errs, err)
	for _, month := range months {
		created, err := Ensure(ctx, m.cfg.DB, month, month.AddDate(0, 1, 0))
		rep.Created = append(rep.Created, created...)
		errs = append(errs, err)
	}

	if !horizon.IsZero() {
		rep.Dropped, err = dropBefore(ctx, m.cfg.DB, horizon)
		errs = append(errs, err)
		rep.Expired, err = expireDefault(ctx, m.cfg.DB, horizon)
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// defaultMonths returns the months of the rows in the default partition
// that are not older than horizon (zero: no horizon).
func defaultMonths(ctx context.Context, db DB, horizon time.Time) ([]time.Time, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month
FROM `+DefaultPartition+` WHERE $1::timestamptz IS NULL OR ts >= $1 ORDER BY month`, nullTime(horizon))
	if err != nil {
		return nil, fmt.Errorf("partition: months in the default partition: %w", err)
	}
	months, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("partition: months in the default partition: %w", err)
	}
	return months, nil
}

// dropBefore drops every partition but the default one whose range ends
// at or before horizon, each in a transaction of its own.
func dropBefore(ctx context.Context, db DB, horizon time.Time) ([]string, error) {
	parts, err := List(ctx, db)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, p := range parts {
		if p.Default || p.To.IsZero() || p.To.After(horizon) {
			continue
		}
		if err := drop(ctx, db, p.Name); err != nil {
			return dropped, err
		}
		dropped = append(dropped, p.Name)
	}
	return dropped, nil
}

// drop drops one partition. DROP TABLE of a partition takes an ACCESS
// EXCLUSIVE lock on readings (DETACH PARTITION too; DETACH … CONCURRENTLY
// does not, but PostgreSQL refuses it while a default partition exists):
// held for a moment, and given up after LockTimeout so that writers never
// queue behind it for long.
func drop(ctx context.Context, db DB, name string) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("partition: drop %s: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := lockLayout(ctx, tx); err != nil {
		return fmt.Errorf("partition: drop %s: %w", name, err)
	}
	if err := setLockTimeout(ctx, tx); err != nil {
		return fmt.Errorf("partition: drop %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("partition: drop %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("partition: drop %s: commit: %w", name, err)
	}
	return nil
}

// expireDefault deletes the rows of the default partition older than
// horizon: readings that arrived after their month's partition was
// dropped.
func expireDefault(ctx context.Context, db DB, horizon time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM `+DefaultPartition+` WHERE ts < $1`, horizon)
	if err != nil {
		return 0, fmt.Errorf("partition: expire the default partition: %w", err)
	}
	return tag.RowsAffected(), nil
}

// nullTime is t as a query parameter, nil for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
