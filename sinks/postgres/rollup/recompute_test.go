package rollup

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestDaysReadTheirHoursWhereTheyCan recomputes the day of a full day of
// 5-minute buckets and counts the rows it reads: a day that starts on a
// whole UTC hour reads its 24 hours and no 5-minute bucket, a day of a
// half-hour zone its 5-minute buckets and no hour (the oracle tests show
// that both give the day right).
func TestDaysReadTheirHoursWhereTheyCan(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
	db.Exec(t,
		`INSERT INTO stations (id, timezone) VALUES ('utc', NULL), ('kolkata', 'Asia/Kolkata')`,
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT s, 'temperature', '2024-12-01T00:00:00Z'::timestamptz + m * interval '5 minutes', m, 'Cel'
		 FROM unnest(ARRAY['utc', 'kolkata']) s, generate_series(0, 287) m`,
	)
	cfg := Config{DB: db.Pool, Types: handlers.Builtin(), Logger: slog.New(slog.DiscardHandler)}
	if _, err := Rebuild(ctx, cfg, Range{}, nil); err != nil {
		t.Fatal(err)
	}
	noon := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		station       string
		hours, fiveMs func(int) bool
	}{
		{"utc", func(n int) bool { return n == 24 }, func(n int) bool { return n == 0 }},
		{"kolkata", func(n int) bool { return n == 0 }, func(n int) bool { return n > 200 }},
	} {
		read := rowsRead(t, db, recompute1d, []string{c.station}, []string{"temperature"}, []time.Time{noon}, []string{"instant"}, DefaultZone)
		if !c.hours(read["readings_1h"]) || !c.fiveMs(read["readings_5m"]) {
			t.Errorf("the day of %s read %d hours and %d 5-minute buckets", c.station, read["readings_1h"], read["readings_5m"])
		}
	}
}

// TestAppendsReadOnlyTheNewReadings recomputes a 5-minute bucket of 100
// readings after one more reading was stored and counts the readings the
// recomputation reads: one when it came after the others (appended), all
// of them when it came between two of them (recomputed whole).
func TestAppendsReadOnlyTheNewReadings(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
	w := quietWorker(t, db)
	bucket := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	// store stores readings at the seconds from, from + step, … up to to
	// of the bucket.
	store := func(from, to, step int) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit)
			SELECT 'roof', 'temperature', $1::timestamptz + s * interval '1 second', s, 'Cel' FROM generate_series($2::int, $3, $4) s`,
			bucket, from, to, step); err != nil {
			t.Fatal(err)
		}
	}
	readsOf := func() int {
		t.Helper()
		var appendedFrom time.Time
		if err := db.Pool.QueryRow(ctx, `SELECT greatest(changed_from, '0001-01-01T00:00:00Z') FROM rollup_invalidations`).Scan(&appendedFrom); err != nil {
			t.Fatal(err)
		}
		return rawRead(rowsRead(t, db, recompute5m, []string{"roof"}, []string{"temperature"}, []time.Time{bucket},
			[]string{"instant"}, []string{""}, []time.Time{appendedFrom}, true, DefaultZone))
	}
	store(0, 198, 2)
	workAll(t, w)
	store(250, 250, 1)
	if n := readsOf(); n != 1 {
		t.Errorf("a reading after the 100 of the bucket: the recomputation read %d readings, want 1", n)
	}
	workAll(t, w)
	store(101, 101, 1)
	if n := readsOf(); n != 102 {
		t.Errorf("a reading between two of the bucket's: the recomputation read %d readings, want all 102", n)
	}
}

// TestVectorBucketsAreAppendedTo stores wind directions with their speeds,
// then one more of each after them: the wind direction's bucket is
// appended to, reading the new direction and its weight only.
func TestVectorBucketsAreAppendedTo(t *testing.T) {
	db := postgrestest.New(t)
	ctx := t.Context()
	w := quietWorker(t, db)
	bucket := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	store := func(from, to int) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit)
			SELECT 'roof', x.sensor, $1::timestamptz + s * interval '1 second', s, x.unit
			FROM generate_series($2::int, $3, 2) s, (VALUES ('wind_direction', 'deg'), ('wind_speed', 'm/s')) x(sensor, unit)`,
			bucket, from, to); err != nil {
			t.Fatal(err)
		}
	}
	store(0, 198)
	workAll(t, w)
	store(250, 250)
	var appendedFrom time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT min(changed_from) FROM rollup_invalidations`).Scan(&appendedFrom); err != nil {
		t.Fatal(err)
	}
	read := rowsRead(t, db, recompute5m, []string{"roof"}, []string{"wind_direction"}, []time.Time{bucket},
		[]string{"vector"}, []string{"wind_speed"}, []time.Time{appendedFrom}, true, DefaultZone)
	if raw := rawRead(read); raw != 2 {
		t.Errorf("a direction and its speed after the bucket's 100: the recomputation read %d readings, want 2 (%v)", raw, read)
	}
}

// rawRead sums the rows read from the readings table and its partitions
// in read (of rowsRead).
func rawRead(read map[string]int) int {
	raw := 0
	for table, n := range read {
		if strings.HasPrefix(table, "readings") && !strings.HasPrefix(table, "readings_5m") &&
			!strings.HasPrefix(table, "readings_1h") && !strings.HasPrefix(table, "readings_1d") {
			raw += n
		}
	}
	return raw
}

// quietWorker returns a Worker of db's readings that logs nothing, not
// started: the test runs its passes.
func quietWorker(t *testing.T, db *postgrestest.DB) *Worker {
	t.Helper()
	w, err := NewWorker(Config{DB: db.Pool, Types: handlers.Builtin(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// workAll runs w's passes until one finds nothing to do.
func workAll(t *testing.T, w *Worker) {
	t.Helper()
	for {
		n, err := w.Work(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// rowsRead runs sql under EXPLAIN ANALYZE in a transaction it rolls back
// and returns the rows each table's scans returned.
func rowsRead(t *testing.T, db *postgrestest.DB, sql string, args ...any) map[string]int {
	t.Helper()
	tx, err := db.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	var plan []struct{ Plan node }
	if err := tx.QueryRow(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	read := map[string]int{}
	var walk func(n node)
	walk = func(n node) {
		if n.Relation != "" && n.Type != "ModifyTable" {
			read[n.Relation] += int(n.Rows * n.Loops)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plan[0].Plan)
	return read
}

// node is a node of a JSON plan of EXPLAIN ANALYZE.
type node struct {
	Type     string  `json:"Node Type"`
	Relation string  `json:"Relation Name"`
	Rows     float64 `json:"Actual Rows"`
	Loops    float64 `json:"Actual Loops"`
	Plans    []node
}
