// Package postgrestest gives each test a PostgreSQL schema of its own, so
// that tests run in parallel against one server.
//
// The server is SENSORHUB_TEST_DATABASE_URL (default DefaultURL), or one the
// test runs itself (NewAt). A test fails when the server is unreachable;
// under go test -short it is skipped.
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		db := postgrestest.New(t) // a fresh schema with every migration applied
//		sink, err := postgres.New(postgres.Config{DB: db.Pool})
//		...
//	}
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sensorhub/sensorhub/migrations"
)

// DefaultURL is the server used when SENSORHUB_TEST_DATABASE_URL is not set:
// a local PostgreSQL with trust authentication and a database named test.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// setupTimeout bounds connecting, creating and migrating a schema, and
// dropping it again.
const setupTimeout = 30 * time.Second

// URL returns the test server's URL (or keyword/value DSN).
func URL() string {
	if u := os.Getenv("SENSORHUB_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// DB is one test's schema. It is dropped, with everything in it, when the
// test ends.
type DB struct {
	// Pool connects to the server with Schema as search_path, so unqualified
	// names resolve to the test's schema. It is closed when the test ends.
	Pool *pgxpool.Pool
	// Schema is the schema's name: "t_" and 16 random hex digits.
	Schema string
	// URL is the server's URL with search_path=Schema added, for connections
	// the test opens itself, such as a subprocess's DATABASE_URL: pgx sends
	// a URL parameter it does not know as a run-time parameter.
	URL string
}

// New creates a schema with every migration of package migrations applied.
// It fails the test when the server is unreachable or the migrations fail,
// and skips it under go test -short.
func New(t testing.TB) *DB {
	t.Helper()
	return migrated(t, NewEmpty(t))
}

// Exec runs statements on db one after the other, such as a test's
// fixture, and fails t on the first that fails.
func (db *DB) Exec(t testing.TB, statements ...string) {
	t.Helper()
	for _, sql := range statements {
		if _, err := db.Pool.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// NewAt is New on the server at serverURL instead of the test server, for a
// server the test runs itself, such as a throwaway cluster it stops and
// restarts. The schema is dropped when the test ends, which fails the test
// when the server is down by then. It is skipped under go test -short.
func NewAt(t testing.TB, serverURL string) *DB {
	t.Helper()
	if testing.Short() {
		t.Skip("postgrestest: needs PostgreSQL; skipped under -short")
	}
	return migrated(t, newSchema(t, serverURL))
}

// migrated applies every migration to db's schema.
func migrated(t testing.TB, db *DB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer func() { _ = sqlDB.Close() }() // does not close the pool
	m, err := migrations.New(migrations.Config{DB: sqlDB, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("postgrestest: %v", err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("postgrestest: migrate schema %s: %v", db.Schema, err)
	}
	return db
}

// NewEmpty creates an empty schema, for tests of the migrations themselves.
// It fails the test when the server is unreachable, and skips it under
// go test -short.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	if testing.Short() {
		t.Skip("postgrestest: needs PostgreSQL; skipped under -short")
	}
	return newSchema(t, URL())
}

// newSchema creates an empty schema on the server at serverURL, dropped when
// the test ends.
func newSchema(t testing.TB, serverURL string) *DB {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	db := &DB{Schema: "t_" + hex.EncodeToString(b[:])}
	db.URL = withSearchPath(serverURL, db.Schema)

	// The pool is configured from db.URL, so every test also checks that
	// the URL selects the schema.
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatalf("postgrestest: parse SENSORHUB_TEST_DATABASE_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db.Pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("postgrestest: %v", err)
	}
	quoted := pgx.Identifier{db.Schema}.Sanitize()
	if _, err := db.Pool.Exec(ctx, "CREATE SCHEMA "+quoted); err != nil {
		db.Pool.Close()
		// The host, port and database identify the server without echoing
		// a password from the URL.
		t.Fatalf("postgrestest: PostgreSQL at %s:%d/%s is unusable (start it, set SENSORHUB_TEST_DATABASE_URL, or run go test -short): %v",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	t.Cleanup(func() {
		defer db.Pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if _, err := db.Pool.Exec(ctx, "DROP SCHEMA "+quoted+" CASCADE"); err != nil {
			t.Errorf("postgrestest: drop schema %s: %v", db.Schema, err)
		}
	})
	return db
}

// withSearchPath adds search_path=schema to a postgres:// URL or a
// keyword/value DSN.
func withSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
