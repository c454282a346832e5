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

// TestPendingInvalidationsAreRewrittenOnlyToMoveEarlier stores readings
// into a bucket whose invalidation is pending: a later one leaves the row
// as it is (no new version, migration 0014), an earlier one moves
// changed_from back, and an update marks the bucket for a recomputation
// (changed_from -infinity) once.
func TestPendingInvalidationsAreRewrittenOnlyToMoveEarlier(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
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
	// version is the pending invalidation's row version and changed_from,
	// the zero time for -infinity.
	version := func() (string, time.Time) {
		t.Helper()
		var (
			ctid string
			from *time.Time
		)
		if err := db.Pool.QueryRow(ctx, `SELECT ctid::text || '/' || xmin::text, CASE WHEN isfinite(changed_from) THEN changed_from END
FROM rollup_invalidations WHERE NOT claimed`).Scan(&ctid, &from); err != nil {
			t.Fatal(err)
		}
		if from == nil {
			return ctid, time.Time{}
		}
		return ctid, *from
	}

	store(30)
	first, from := version()
	if !from.Equal(at(30)) {
		t.Fatalf("changed_from after the first reading: %s, want %s", from, at(30))
	}
	store(40)
	if v, from := version(); v != first || !from.Equal(at(30)) {
		t.Errorf("a later reading rewrote the pending invalidation: version %s → %s, changed_from %s (want it left at %s)", first, v, from, at(30))
	}
	store(20)
	moved, from := version()
	if moved == first || !from.Equal(at(20)) {
		t.Errorf("an earlier reading: version %s → %s, changed_from %s, want a new version with %s", first, moved, from, at(20))
	}
	exec(`UPDATE readings SET value = 2 WHERE ts = $1`, at(40))
	recompute, from := version()
	if recompute == moved || !from.IsZero() {
		t.Errorf("an update: version %s → %s, changed_from %s, want a new version with -infinity", moved, recompute, from)
	}
	exec(`UPDATE readings SET value = 3 WHERE ts = $1`, at(40))
	if v, _ := version(); v != recompute {
		t.Errorf("a second update rewrote an invalidation that recomputes the bucket already: version %s → %s", recompute, v)
	}
}
