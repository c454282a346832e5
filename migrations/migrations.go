// Package migrations holds the SQL migrations that create sensorhub's
// PostgreSQL schema, embedded in the binary, and a Migrator that applies them
// with pressly/goose.
//
// Migrations are forward-only once shipped: never edit or rename a file here;
// change the schema with a new NNNN_name.sql file. Statements use unqualified
// names, so they apply to the first schema of the connection's search_path.
//
// A program that embeds sensorhub migrates its pgx pool with one call before
// it starts, and a service checks at start-up that it was done:
//
//	applied, err := migrations.Up(ctx, pool, logger)
//	...
//	err = migrations.Check(ctx, pool) // errors.Is(err, migrations.ErrNotMigrated)
//
// A Migrator, over a database/sql handle (stdlib.OpenDBFromPool(pool) or
// sql.Open("pgx", dsn)), also rolls back and lists migrations.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// FS holds the migration files, NNNN_name.sql with goose annotations, at its
// root.
//
//go:embed *.sql
var FS embed.FS

// How long Up, Down and Status wait for another process's migration: the
// lock is polled every lockPollSeconds, lockPolls times.
const (
	lockPollSeconds = 1
	lockPolls       = 60
)

// ErrNothingApplied is returned (wrapped) by Migrator.Down when no migration
// is applied, so there is nothing to roll back.
var ErrNothingApplied = errors.New("no applied migration to roll back")

// Config configures a Migrator.
type Config struct {
	// DB is the database to migrate, typically opened with pgx's driver
	// (github.com/jackc/pgx/v5/stdlib): stdlib.OpenDBFromPool(pool) or
	// sql.Open("pgx", dsn). The migrations apply to the schema that
	// current_schema() names on its connections. Required; the Migrator
	// never closes it.
	DB *sql.DB
	// Logger receives an Info record for every migration applied or rolled
	// back. nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("migrations: Config.DB is nil"))
	}
	return errors.Join(errs...)
}

// Migrator applies the embedded migrations (FS) to one database schema.
//
// Up, Down and Status hold a PostgreSQL session-level advisory lock while
// they run, so any number of processes can migrate the same schema at once
// (say, replicas that all run `sensorhub migrate up` on start): one applies
// the migrations, the others wait for it (polling every second, for up to a
// minute) and then find nothing left to do. The lock ID is derived from the
// schema name, so migrations of different schemas in one database, such as
// parallel tests each in its own schema, do not wait for each other.
//
// A Migrator is safe for concurrent use.
type Migrator struct {
	db     *sql.DB
	logger *slog.Logger
}

// New returns a Migrator for cfg.DB, or the error of cfg.Validate.
func New(cfg Config) (*Migrator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Migrator{db: cfg.DB, logger: cfg.Logger}, nil
}

// Result reports one migration that Up applied or Down rolled back.
type Result struct {
	// Version is the migration's number, the NNNN prefix of its file name.
	Version int64
	// Name is the migration's file name, e.g. "0001_readings.sql".
	Name string
	// Duration is how long the migration's statements took.
	Duration time.Duration
}

// Status is the state of one migration, as reported by Migrator.Status.
type Status struct {
	// Version is the migration's number, the NNNN prefix of its file name.
	Version int64
	// Name is the migration's file name, e.g. "0001_readings.sql".
	Name string
	// Applied reports whether the migration is applied to the schema.
	Applied bool
	// AppliedAt is when the migration was applied; zero when Applied is
	// false.
	AppliedAt time.Time
}

// Up applies every pending migration, in version order, each in its own
// transaction. It returns the migrations it applied, none when the schema is
// up to date. When a migration fails, Up returns the ones applied before it
// together with the error.
func (m *Migrator) Up(ctx context.Context) ([]Result, error) {
	p, err := m.provider(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: up: %w", err)
	}
	res, err := p.Up(ctx)
	if pe, ok := errors.AsType[*goose.PartialError](err); ok {
		res = pe.Applied
	}
	applied := make([]Result, 0, len(res))
	for _, r := range res {
		applied = append(applied, m.report(ctx, "migrations: applied", r))
	}
	if err != nil {
		return applied, fmt.Errorf("migrations: up: %w", err)
	}
	return applied, nil
}

// Down rolls back the most recently applied migration, one step only. It
// returns an error wrapping ErrNothingApplied when no migration is applied.
func (m *Migrator) Down(ctx context.Context) (Result, error) {
	p, err := m.provider(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrations: down: %w", err)
	}
	res, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return Result{}, fmt.Errorf("migrations: down: %w", ErrNothingApplied)
	}
	if err != nil {
		return Result{}, fmt.Errorf("migrations: down: %w", err)
	}
	return m.report(ctx, "migrations: rolled back", res), nil
}

// Status lists every embedded migration in version order with whether it is
// applied. It waits while another process migrates the schema.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	p, err := m.provider(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	states, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	out := make([]Status, 0, len(states))
	for _, s := range states {
		out = append(out, Status{
			Version:   s.Source.Version,
			Name:      path.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// provider returns a goose provider whose lock is private to the schema that
// m.db's connections use. It is built per call because that schema is only
// known by asking the database.
func (m *Migrator) provider(ctx context.Context) (*goose.Provider, error) {
	var schema sql.NullString
	if err := m.db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("current schema: %w", err)
	}
	if !schema.Valid {
		return nil, errors.New("no current schema: the search_path names no existing schema")
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(lockID(schema.String)),
		lock.WithLockTimeout(lockPollSeconds, lockPolls),
	)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	// The global registry holds Go migrations registered by any imported
	// package; only the embedded SQL files belong to this schema.
	return goose.NewProvider(goose.DialectPostgres, m.db, FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
}

// lockID returns the advisory lock ID that guards migrations of schema.
// Advisory locks are scoped to a database, so the schema is all that has to
// tell two migrations apart. The ID must not change between releases:
// processes of different versions migrating at once must take the same lock.
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sensorhub:migrations:" + schema))
	return int64(h.Sum64())
}

func (m *Migrator) report(ctx context.Context, msg string, r *goose.MigrationResult) Result {
	res := Result{Version: r.Source.Version, Name: path.Base(r.Source.Path), Duration: r.Duration}
	m.logger.InfoContext(ctx, msg, "version", res.Version, "name", res.Name, "duration", res.Duration)
	return res
}
