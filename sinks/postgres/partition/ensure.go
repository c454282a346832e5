package partition

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ensure gives every UTC month that [from, to) touches a partition of its
// own, unless a partition other than the default one already covers part
// of it (the legacy partition, or one made by hand), and returns the names
// of the partitions it created. Rows the default partition holds for a
// new partition's month move into it in the same transaction. Each month
// is one transaction under the layout's advisory lock, so concurrent calls,
// from replicas too, create each partition once; a month whose locks are
// not granted within LockTimeout fails Ensure, and the months before it
// stay created. An empty range creates nothing.
func Ensure(ctx context.Context, db DB, from, to time.Time) ([]string, error) {
	var created []string
	for month := monthOf(from); month.Before(to); month = month.AddDate(0, 1, 0) {
		name, err := ensureMonth(ctx, db, month)
		if err != nil {
			return created, err
		}
		if name != "" {
			created = append(created, name)
		}
	}
	return created, nil
}

// ensureMonth creates the partition of the month starting at month and
// returns its name, or "" when the month is covered already.
//
// The partition is made as CREATE TABLE … LIKE and ATTACH PARTITION rather
// than CREATE TABLE … PARTITION OF, which takes an ACCESS EXCLUSIVE lock on
// readings and so would block its readers too. ATTACH takes an ACCESS
// EXCLUSIVE lock on the default partition and scans it for rows of the new
// range (it holds few rows, so the scan is short).
//
// Writers of readings wait for the transaction: it takes a SHARE lock on
// readings first. Without it, an INSERT that chose its partitions before
// the ATTACH committed, and then waited for the default partition's lock,
// would put its row into the default partition after all and fail on the
// default partition's new constraint (SQLSTATE 23514, which the sink takes
// for bad data).
//
// Readers are not blocked, unless rows of the month must leave the
// default partition: then the lock on readings becomes ACCESS EXCLUSIVE
// for the move. A statement planned while the new partition was not yet
// attached, and run once the move had committed, would see those rows in
// neither partition (the rollup worker recomputed such a bucket as empty
// and deleted it); waiting on readings' lock, it is planned after the
// move instead.
func ensureMonth(ctx context.Context, db DB, month time.Time) (string, error) {
	next := month.AddDate(0, 1, 0)
	name := monthName(month)
	tx, err := db.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("partition: create %s: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := lockLayout(ctx, tx); err != nil {
		return "", fmt.Errorf("partition: create %s: %w", name, err)
	}
	parts, err := List(ctx, tx)
	if err != nil {
		return "", err
	}
	if covers(parts, month, next) {
		return "", nil
	}
	if err := setLockTimeout(ctx, tx); err != nil {
		return "", fmt.Errorf("partition: create %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+Table+` IN SHARE MODE`); err != nil {
		return "", fmt.Errorf("partition: create %s: %w", name, err)
	}
	hasDefault, moving := len(parts) > 0 && parts[len(parts)-1].Default, false
	if hasDefault {
		if moving, err = defaultHolds(ctx, tx, month, next); err != nil {
			return "", fmt.Errorf("partition: create %s: %w", name, err)
		}
	}
	table := pgx.Identifier{name}.Sanitize()
	var steps []string
	switch {
	case moving: // readings and every partition, the default one too
		steps = append(steps, `LOCK TABLE `+Table+` IN ACCESS EXCLUSIVE MODE`)
	case hasDefault:
		steps = append(steps, `LOCK TABLE `+DefaultPartition+` IN ACCESS EXCLUSIVE MODE`)
	}
	steps = append(steps, `CREATE TABLE `+table+` (LIKE `+Table+` INCLUDING ALL)`)
	if moving {
		steps = append(steps,
			`WITH moved AS (DELETE FROM `+DefaultPartition+` WHERE ts >= `+literal(month)+` AND ts < `+literal(next)+` RETURNING *)
INSERT INTO `+table+` SELECT * FROM moved`)
	}
	steps = append(steps,
		`ALTER TABLE `+Table+` ATTACH PARTITION `+table+` FOR VALUES FROM (`+literal(month)+`) TO (`+literal(next)+`)`)
	for _, sql := range steps {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return "", fmt.Errorf("partition: create %s: %w", name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("partition: create %s: commit: %w", name, err)
	}
	return name, nil
}

// defaultHolds reports whether the default partition holds rows of
// [from, to). Under the SHARE lock on readings no writer can add one.
func defaultHolds(ctx context.Context, tx pgx.Tx, from, to time.Time) (bool, error) {
	var holds bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+DefaultPartition+` WHERE ts >= $1 AND ts < $2)`, from, to).Scan(&holds)
	if err != nil {
		return false, fmt.Errorf("look for rows to move: %w", err)
	}
	return holds, nil
}
