package rollup

import (
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestEveryChangeAppendsAnInvalidation changes readings of one bucket
// statement by statement (migration 0017): each statement that can alter
// the bucket's rollup adds one invalidation per bucket it touched, with
// the earliest device time it inserted, changed or deleted there, and
// leaves the others as they are; one that cannot (a flag moving between 1
// and 3) adds none.
func TestEveryChangeAppendsAnInvalidation(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
	at := func(second int) time.Time { return time.Date(2024, 12, 1, 0, 0, second, 0, time.UTC) }
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	// log is the changed_from of every invalidation, by the transaction
	// that wrote it (each statement here is one), then by time.
	log := func() []time.Time {
		t.Helper()
		rows, err := db.Pool.Query(ctx, `SELECT changed_from FROM rollup_invalidations ORDER BY xmin::text::bigint, changed_from`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var want []time.Time
	step := func(name string, added ...time.Time) {
		t.Helper()
		want = append(want, added...)
		got := log()
		if len(got) != len(want) {
			t.Fatalf("%s: log %v, want %v", name, got, want)
		}
		for i := range got {
			if !got[i].Equal(want[i]) {
				t.Fatalf("%s: log %v, want %v", name, got, want)
			}
		}
	}

	exec(`INSERT INTO readings (station, sensor, ts, value, unit) VALUES
		('roof', 'temperature', $1, 1, 'Cel'), ('roof', 'temperature', $2, 1, 'Cel'), ('roof', 'temperature', $3, 1, 'Cel')`,
		at(40), at(30), at(400))
	step("three readings in two buckets", at(30), at(400))
	exec(`INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('roof', 'temperature', $1, 1, 'Cel')`, at(50))
	step("a later reading", at(50))
	exec(`UPDATE readings SET value = 2 WHERE ts = $1`, at(40))
	step("a correction", at(40))
	exec(`UPDATE readings SET qc_flag = 3 WHERE ts = $1`, at(30))
	step("a flag from 1 to 3")
	exec(`UPDATE readings SET qc_flag = 4 WHERE ts = $1`, at(30))
	step("a flag to fail", at(30))
	exec(`DELETE FROM readings WHERE ts = $1`, at(50))
	step("a deletion", at(50))
}

// TestAPassTakesEveryInvalidationOfItsBuckets stores three readings of a
// bucket in three statements, then one of another bucket, and runs passes
// that look at one invalidation each: the first takes all three of the
// oldest bucket and says more may be pending, the second the other, and
// each bucket counts its readings.
func TestAPassTakesEveryInvalidationOfItsBuckets(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
	w, err := NewWorker(Config{DB: db.Pool, Types: handlers.Builtin(), Batch: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, second := range []int{10, 20, 30, 400} {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('roof', 'temperature', $1, 1, 'Cel')`,
			time.Date(2024, 12, 1, 0, 0, second, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM rollup_invalidations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, want := range []struct{ taken, left int }{{1, 1}, {1, 0}} {
		n, more, err := w.pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want.taken || !more || pending() != want.left {
			t.Fatalf("pass %d took %d buckets (more pending: %t), leaving %d invalidations; want %d (true), leaving %d",
				i+1, n, more, pending(), want.taken, want.left)
		}
	}
	rows, err := db.Pool.Query(ctx, `SELECT count FROM readings_5m ORDER BY bucket`)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 2 || counts[0] != 3 || counts[1] != 1 {
		t.Errorf("the buckets count %v readings, want [3 1]", counts)
	}
}
