package partition

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Names of the partitioned table and its fixed partitions, as migration
// 0010 creates them: do not rename them.
const (
	// Table is the partitioned table.
	Table = "readings"
	// DefaultPartition holds the readings whose month has no partition.
	// Never drop it: without it, such a reading would be refused.
	DefaultPartition = "readings_default"
	// LegacyPartition is the table that readings was before migration 0010,
	// holding every time before its first month of its own; it exists
	// only where that table held rows.
	LegacyPartition = "readings_legacy"
)

// LockTimeout bounds how long a change of the partition layout waits for
// a table lock before it gives up, so that it never queues for long ahead
// of the writers of readings. It is below PostgreSQL's default
// deadlock_timeout (1 s): a writer that holds readings and waits for a
// station's lock held by a writer queued behind the change makes a cycle,
// and the change, which is retried anyway, gives up before PostgreSQL
// would look for the cycle and maybe abort a writer instead.
const LockTimeout = 500 * time.Millisecond

// DB is what the package needs from PostgreSQL; *pgxpool.Pool satisfies
// it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Partition is one partition of readings.
type Partition struct {
	// Name is the partition's table name.
	Name string
	// From and To bound its range [From, To) of device time; From is the
	// zero time for MINVALUE. Both are zero for the default partition.
	From, To time.Time
	// Default is true for the default partition.
	Default bool
}

// Querier runs a query; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// listPartitions reads each partition's bounds back from its bound
// expression: timestamptz literals print and parse in the session's own
// settings, so the round trip is exact whatever its TimeZone.
const listPartitions = `SELECT c.relname::text,
       (regexp_match(b.expr, 'FROM \(''([^'']*)''\)'))[1]::timestamptz,
       (regexp_match(b.expr, 'TO \(''([^'']*)''\)'))[1]::timestamptz,
       b.expr = 'DEFAULT'
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS expr) b
WHERE i.inhparent = to_regclass('` + Table + `')
ORDER BY b.expr = 'DEFAULT', 2 NULLS FIRST`

// List returns the partitions of readings, ordered by range, the default
// partition last.
func List(ctx context.Context, q Querier) ([]Partition, error) {
	rows, err := q.Query(ctx, listPartitions)
	if err != nil {
		return nil, fmt.Errorf("partition: list: %w", err)
	}
	var (
		out      []Partition
		p        Partition
		from, to *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&p.Name, &from, &to, &p.Default}, func() error {
		p.From, p.To = time.Time{}, time.Time{}
		if from != nil {
			p.From = from.UTC()
		}
		if to != nil {
			p.To = to.UTC()
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("partition: list: %w", err)
	}
	return out, nil
}

// covers reports whether a partition other than the default one overlaps
// [from, to).
func covers(parts []Partition, from, to time.Time) bool {
	for _, p := range parts {
		if p.Default {
			continue
		}
		if (p.From.IsZero() || p.From.Before(to)) && (p.To.IsZero() || p.To.After(from)) {
			return true
		}
	}
	return false
}

// monthOf returns the start of t's UTC month.
func monthOf(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// monthKey numbers t's UTC month: consecutive months, consecutive keys.
func monthKey(t time.Time) int {
	y, m, _ := t.UTC().Date()
	return y*12 + int(m) - 1
}

// monthName is the name of the partition of the month starting at month.
func monthName(month time.Time) string {
	return fmt.Sprintf("%s_p%04d_%02d", Table, month.Year(), int(month.Month()))
}

// lockLayout takes the transaction-level advisory lock that serializes
// every change of the partition layout of the schema tx works in. Advisory
// locks are per database, so the schema is part of the ID. The ID must
// not change between releases: replicas of different versions take it.
func lockLayout(ctx context.Context, tx pgx.Tx) error {
	var schema string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("sensorhub:partitions:" + schema))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return fmt.Errorf("lock the partition layout: %w", err)
	}
	return nil
}

// setLockTimeout bounds the table-lock waits of tx to LockTimeout.
func setLockTimeout(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, LockTimeout.Milliseconds()))
	return err
}

// literal is t as an SQL timestamptz literal, for DDL, which takes no
// parameters.
func literal(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05.999999Z07:00") + "'"
}
