package rollup

import (
	"log/slog"
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
	for _, sql := range []string{
		`INSERT INTO stations (id, timezone) VALUES ('utc', NULL), ('kolkata', 'Asia/Kolkata')`,
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT s, 'temperature', '2024-12-01T00:00:00Z'::timestamptz + m * interval '5 minutes', m, 'Cel'
		 FROM unnest(ARRAY['utc', 'kolkata']) s, generate_series(0, 287) m`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
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
