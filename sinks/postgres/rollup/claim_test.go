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
