package rollup

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestClaimsOfADeadPassAreTaken claims a bucket's invalidation in a pass
// that then dies (it never recomputes), changes the bucket again, and runs
// a pass: it takes both the dead pass's claim and the new change, and the
// bucket counts every reading.
func TestClaimsOfADeadPassAreTaken(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
	w := quietWorker(t, db)
	store := func(second int) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('roof', 'temperature', $1, 1, 'Cel')`,
			time.Date(2024, 12, 1, 0, 0, second, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	store(10)
	if _, err := w.claim(ctx); err != nil {
		t.Fatal(err)
	}
	store(20)
	var claimed, pending int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE claimed), count(*) FILTER (WHERE NOT claimed) FROM rollup_invalidations`).Scan(&claimed, &pending); err != nil {
		t.Fatal(err)
	}
	if claimed != 1 || pending != 1 {
		t.Fatalf("after a claim and a change: %d claimed and %d pending invalidations, want 1 and 1", claimed, pending)
	}
	workAll(t, w)
	var count, left int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count FROM readings_5m), (SELECT count(*) FROM rollup_invalidations)`).Scan(&count, &left); err != nil {
		t.Fatal(err)
	}
	if count != 2 || left != 0 {
		t.Errorf("after the next passes: the bucket counts %d readings with %d invalidations left, want 2 and 0", count, left)
	}
}

// TestPendingInvalidationsAreRewrittenOnlyToMoveEarlier changes readings
// of a bucket whose invalidation is pending (migrations 0014 and 0015): a reading
// stored, corrected or deleted after its changed_from leaves the row as
// it is (no new version), one before moves changed_from back to its time,
// and none makes it -infinity, so the bucket can still be appended to
// after its through.
func TestPendingInvalidationsAreRewrittenOnlyToMoveEarlier(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
	w := quietWorker(t, db)
	at := func(second int) time.Time { return time.Date(2024, 12, 1, 0, 0, second, 0, time.UTC) }
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	store := func(second int) {
		t.Helper()
		exec(`INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('roof', 'temperature', $1, 1, 'Cel')`, at(second))
	}
	// pending is the pending invalidation's row version and changed_from
	// (the zero time for -infinity).
	pending := func() (string, time.Time) {
		t.Helper()
		var (
			version string
			from    *time.Time
		)
		if err := db.Pool.QueryRow(ctx, `SELECT ctid::text || '/' || xmin::text, CASE WHEN isfinite(changed_from) THEN changed_from END
FROM rollup_invalidations WHERE NOT claimed`).Scan(&version, &from); err != nil {
			t.Fatal(err)
		}
		if from == nil {
			return version, time.Time{}
		}
		return version, *from
	}
	want := func(step, version string, changedFrom time.Time, rewritten bool) string {
		t.Helper()
		v, from := pending()
		if (v != version) != rewritten || !from.Equal(changedFrom) {
			t.Errorf("%s: version %s → %s, changed_from %s; want it rewritten %t, changed_from %s", step, version, v, from, rewritten, changedFrom)
		}
		return v
	}

	store(5)
	if _, err := w.claim(ctx); err != nil { // the reading at 5 is the claimed invalidation's
		t.Fatal(err)
	}
	store(30)
	v, _ := pending()
	v = want("a later reading", v, at(30), false)
	store(40)
	v = want("a later reading", v, at(30), false)
	exec(`UPDATE readings SET value = 2 WHERE ts = $1`, at(40))
	v = want("a correction after changed_from", v, at(30), false)
	exec(`UPDATE readings SET value = 2 WHERE ts = $1`, at(30))
	v = want("a correction at changed_from", v, at(30), false)
	store(20)
	v = want("an earlier reading", v, at(20), true)
	exec(`UPDATE readings SET qc_flag = 4 WHERE ts = $1`, at(5))
	v = want("an earlier flag to fail", v, at(5), true)
	exec(`DELETE FROM readings WHERE ts = $1`, at(40))
	want("a deletion after changed_from", v, at(5), false)
}
