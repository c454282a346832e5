package migrations

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNotMigrated is returned (wrapped) by Check when migrations embedded in
// this build are not applied to the schema; the error names them.
var ErrNotMigrated = errors.New("database schema is not migrated")

// versionTable is where goose records the applied migrations, in the
// migrated schema.
const versionTable = "goose_db_version"

// Querier runs a query; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Check returns an error wrapping ErrNotMigrated, naming every pending
// migration, unless each migration of this build is applied to the schema
// that q's connections use. It only reads: it neither creates goose's
// version table nor waits for the migration lock. Migrations applied to
// the schema but unknown to this build (a newer release migrated it) are
// fine. Services call it at start-up, so that a database that was never
// migrated stops them with a clear error instead of failing every write.
func Check(ctx context.Context, q Querier) error {
	want, err := versions()
	if err != nil {
		return fmt.Errorf("migrations: check: %w", err)
	}
	applied, err := appliedVersions(ctx, q)
	if err != nil {
		return fmt.Errorf("migrations: check: %w", err)
	}
	var pending []string
	for _, m := range want {
		if !slices.Contains(applied, m.version) {
			pending = append(pending, m.name)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("migrations: %w: %d of %d migrations pending (%s); apply them with `sensorhub migrate up` or migrations.Up",
			ErrNotMigrated, len(pending), len(want), strings.Join(pending, ", "))
	}
	return nil
}

// appliedVersions lists the versions goose recorded as applied, none when
// its table does not exist. Goose deletes a version's row when it rolls it
// back, so the newest row of a version tells its state.
func appliedVersions(ctx context.Context, q Querier) ([]int64, error) {
	rows, err := q.Query(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", versionTable, err)
	}
	exists, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[bool])
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", versionTable, err)
	}
	if !exists {
		return nil, nil
	}
	rows, err = q.Query(ctx, `SELECT version_id FROM (
  SELECT DISTINCT ON (version_id) version_id, is_applied FROM `+versionTable+` ORDER BY version_id, id DESC
) AS latest WHERE is_applied`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", versionTable, err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", versionTable, err)
	}
	return applied, nil
}

// migration is one embedded migration file.
type migration struct {
	version int64
	name    string
}

// versions lists the embedded migrations in version order, each version
// read from its file name's NNNN prefix, as goose reads it.
func versions() ([]migration, error) {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		return nil, err
	}
	out := make([]migration, 0, len(names))
	for _, name := range names {
		prefix, _, _ := strings.Cut(path.Base(name), "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration %s: no version prefix: %w", name, err)
		}
		out = append(out, migration{version: v, name: name})
	}
	slices.SortFunc(out, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	return out, nil
}
