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
// range: the rows of the month leave it first, with the default partition
// locked from the start so that none arrives in between (it holds few
// rows, so the scan is short).
//
// Writers of readings wait for the transaction: it takes a SHARE lock on
// readings first. Without it, an INSERT that chose its partitions before
// the ATTACH committed, and then waited for the default partition's lock,
// would put its row into the default partition after all and fail on the
// default partition's new constraint (SQLSTATE 23514, which the sink takes
// for bad data). Readers are not blocked.
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
	hasDefault := len(parts) > 0 && parts[len(parts)-1].Default
	table := pgx.Identifier{name}.Sanitize()
	steps := []string{`LOCK TABLE ` + Table + ` IN SHARE MODE`}
	if hasDefault {
		steps = append(steps, `LOCK TABLE `+DefaultPartition+` IN ACCESS EXCLUSIVE MODE`)
	}
	steps = append(steps, `CREATE TABLE `+table+` (LIKE `+Table+` INCLUDING ALL)`)
	if hasDefault {
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
