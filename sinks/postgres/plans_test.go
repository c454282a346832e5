package postgres

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestCursorStatementsLookKeysUp checks the plans of the release read and
// of the cursor save for 500 series in a young partition (5 stations, 13
// types, 10 minutes a second apart: 39,000 rows, analyzed) and 39,000
// cursors, bound (custom plans) and not (the generic plans pgx's cached
// statements end up with): they read readings and processor_cursors
// through the primary keys' indexes only, where the plain joins over the
// same keys, the controls, scan the partition or the cursors whole.
func TestCursorStatementsLookKeysUp(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	t0 := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	db.Exec(t,
		`CREATE TABLE readings_p2024_12 PARTITION OF readings FOR VALUES FROM ('2024-12-01') TO ('2025-01-01')`,
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT 's' || st, 'sensor' || se, '2024-12-01'::timestamptz + s * interval '1 second', s, 'Cel'
		 FROM generate_series(1, 5) st, generate_series(1, 13) se, generate_series(1, 600) s`,
		`INSERT INTO processor_cursors (processor, station, sensor, processed_until, max_ts)
		 SELECT 'p' || p, 's' || st, 'sensor' || se, '2024-12-01', '2024-12-01'
		 FROM generate_series(1, 3) p, generate_series(1, 1000) st, generate_series(1, 13) se`,
		`ANALYZE`,
	)
	var stations, sensors []string
	var afters, uptos []time.Time
	var states [][]byte
	for st := 1; st <= 50; st++ {
		for se := 1; se <= 10; se++ {
			stations, sensors = append(stations, fmt.Sprint("s", st)), append(sensors, fmt.Sprint("sensor", se))
			afters, uptos = append(afters, t0.Add(590*time.Second)), append(uptos, t0.Add(600*time.Second))
			states = append(states, nil)
		}
	}
	releaseControl := `SELECT k.i, r.ts, r.value, r.unit
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS k(station, sensor, after, upto, i)
JOIN readings r ON r.station = k.station AND r.sensor = k.sensor AND r.ts > k.after AND r.ts <= k.upto
  AND ($5 OR r.qc_flag <> 4)
ORDER BY k.i, r.ts`
	saveControl, cut := strings.CutSuffix(saveCursors, "\n  AND k.processed_until BETWEEN '-infinity' AND 'infinity'")
	if !cut {
		t.Fatal("saveCursors no longer ends with the condition the control leaves out")
	}
	// The scans that read the partition or the cursors whole: for the
	// cursors also a bitmap scan by processor alone, which the hash join
	// of the control takes.
	partition := []postgrestest.Scan{{Node: "Seq Scan", Relation: "readings_p2024_12"}}
	cursors := []postgrestest.Scan{{Node: "Seq Scan", Relation: "processor_cursors"}, {Node: "Bitmap Heap Scan", Relation: "processor_cursors"}}
	release := []any{stations, sensors, afters, uptos, false}
	save := []any{"p1", stations, sensors, uptos, states}
	for _, c := range []struct {
		name    string
		sql     string
		args    []any
		whole   []postgrestest.Scan
		generic bool
		control bool
	}{
		{"release/control", releaseControl, release, partition, false, true},
		{"release/custom", releaseReadings, release, partition, false, false},
		{"release/generic", releaseReadings, release, partition, true, false},
		{"save/control", saveControl, save, cursors, false, true},
		{"save/custom", saveCursors, save, cursors, false, false},
		{"save/generic", saveCursors, save, cursors, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			scans := db.Scans(t, c.generic, c.sql, c.args...)
			whole := slices.ContainsFunc(scans, func(s postgrestest.Scan) bool { return slices.Contains(c.whole, s) })
			if whole != c.control {
				t.Errorf("reads %v: %v, want %v; plan reads %v", c.whole, whole, c.control, scans)
			}
		})
	}
}
