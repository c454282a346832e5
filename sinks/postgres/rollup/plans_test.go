package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestRecomputationLooksBucketsUp checks the plans of the worker's
// statements for 500 buckets of a young partition (50 stations, 13 types,
// six hours a minute apart: 234,000 readings, with their 5-minute, hourly
// and daily rows, analyzed), bound (custom plans) and not (the generic
// plans PostgreSQL keeps for pgx's cached statements after five runs,
// which the service allows): none reads the partition or a rollup table
// whole, where a plain join of the same series with readings, the
// control, reads the partition whole.
func TestRecomputationLooksBucketsUp(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	t0 := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	db.Exec(t,
		`CREATE TABLE readings_p2024_12 PARTITION OF readings FOR VALUES FROM ('2024-12-01') TO ('2025-01-01')`,
		`ALTER TABLE readings DISABLE TRIGGER USER`, // no invalidations: the rollups are written below
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT 's' || st, 'sensor' || se, '2024-12-01'::timestamptz + m * interval '1 minute', m, 'Cel'
		 FROM generate_series(1, 50) st, generate_series(1, 13) se, generate_series(0, 359) m`,
		`ALTER TABLE readings ENABLE TRIGGER USER`,
		`INSERT INTO readings_5m (station, sensor, bucket, count, avg, through)
		 SELECT station, sensor, date_bin('5 minutes', ts, 'epoch'), count(*), avg(value), max(ts) FROM readings GROUP BY 1, 2, 3`,
		`INSERT INTO readings_1h (station, sensor, bucket, count, avg)
		 SELECT station, sensor, date_bin('1 hour', bucket, 'epoch'), sum(count), avg(avg) FROM readings_5m GROUP BY 1, 2, 3`,
		`INSERT INTO readings_1d (station, sensor, bucket, count, avg)
		 SELECT station, sensor, date_bin('1 day', bucket, 'epoch'), sum(count), avg(avg) FROM readings_1h GROUP BY 1, 2, 3`,
		`ANALYZE`,
	)
	var stations, sensors, kinds, weights []string
	var starts, appended []time.Time
	for st := 1; st <= 50; st++ {
		for se := 1; se <= 10; se++ {
			stations, sensors = append(stations, fmt.Sprint("s", st)), append(sensors, fmt.Sprint("sensor", se))
			kinds, weights = append(kinds, "instant"), append(weights, "")
			starts, appended = append(starts, t0.Add(3*time.Hour)), append(appended, t0.Add(3*time.Hour+2*time.Minute))
		}
	}
	// Reading a table whole: a sequential scan of a rollup table or of the
	// month's partition (the default partition is empty, and cheapest so
	// read).
	whole := func(s postgrestest.Scan) bool {
		return s.Node == "Seq Scan" && strings.HasPrefix(s.Relation, "readings") && s.Relation != "readings_default"
	}
	const control = `SELECT sum(r.value) FROM readings r
JOIN unnest($1::text[], $2::text[]) AS k(station, sensor) ON r.station = k.station AND r.sensor = k.sensor`
	for _, c := range []struct {
		name    string
		sql     string
		args    []any
		control bool
	}{
		{"control", control, []any{stations, sensors}, true},
		{"5m", recompute5m, []any{stations, sensors, starts, kinds, weights, appended, true, "UTC"}, false},
		{"1h", recompute1h, []any{stations, sensors, starts, kinds}, false},
		{"1d", recompute1d, []any{stations, sensors, starts, kinds, "UTC"}, false},
	} {
		for _, generic := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/generic=%v", c.name, generic), func(t *testing.T) {
				scans := db.Scans(t, generic, c.sql, c.args...)
				if slices.ContainsFunc(scans, whole) != c.control {
					t.Errorf("reads a table whole: %v, want %v; plan reads %v", !c.control, c.control, scans)
				}
			})
		}
	}
}

// TestTakeIsPlannedWithItsStations runs a worker's passes on one
// connection, more than the five after which PostgreSQL may keep a
// prepared statement's generic plan, and checks that the connection kept
// no plan of the take: it is planned with its stations every time, so
// that their array is a hash table (see take).
func TestTakeIsPlannedWithItsStations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	w, err := NewWorker(Config{DB: conn, Types: handlers.Builtin(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for pass := range 8 {
		db.Exec(t, fmt.Sprintf(`INSERT INTO readings (station, sensor, ts, value, unit)
			SELECT 's' || st, 'temperature', '2024-12-01T00:00:00Z'::timestamptz + %d * interval '5 minutes', 1, 'Cel'
			FROM generate_series(1, 20) st`, pass))
		if n, err := w.Work(ctx); err != nil || n != 20 {
			t.Fatalf("pass %d took %d buckets, %v; want 20", pass, n, err)
		}
	}
	var kept []string
	rows, err := conn.Query(ctx, `SELECT statement FROM pg_prepared_statements WHERE strpos(statement, $1) > 0`, "DELETE FROM rollup_invalidations")
	if err != nil {
		t.Fatal(err)
	}
	if kept, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(kept) > 0 {
		t.Errorf("the connection keeps the take prepared, with a plan it may make generic: %q", kept)
	}
}
