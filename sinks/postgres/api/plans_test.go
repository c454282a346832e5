package api

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestQueryPlansUseIndexes checks the plans of the API's queries on a
// schema with enough rows that a sequential scan would cost (50 stations,
// 4 sensors each, a day of readings a minute apart): none of them reads
// readings or a rollup table but through an index, with the
// parameters bound (custom plans) and without (the generic plans pgx's
// cached statements end up with).
func TestQueryPlansUseIndexes(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	t0 := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	db.Exec(t,
		`INSERT INTO stations (id) SELECT 's' || i FROM generate_series(1, 50) i`,
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT 's' || st, 'sensor' || se, '2024-12-01'::timestamptz + m * interval '1 minute', m, 'Cel'
		 FROM generate_series(1, 50) st, generate_series(1, 4) se, generate_series(1, 1440) m`,
		`INSERT INTO readings_5m (station, sensor, bucket, count, avg)
		 SELECT 's' || st, 'sensor' || se, '2024-12-01'::timestamptz + b * interval '5 minutes', 5, b
		 FROM generate_series(1, 50) st, generate_series(1, 4) se, generate_series(1, 288) b`,
		`INSERT INTO readings_1h SELECT station, sensor, date_trunc('hour', bucket), sum(count), avg(avg), min(avg), max(avg)
		 FROM readings_5m GROUP BY 1, 2, 3`,
		`INSERT INTO readings_1d (station, sensor, bucket, count, avg)
		 SELECT 's' || st, 'sensor' || se, '2024-01-01'::timestamptz + d * interval '1 day', 1440, d
		 FROM generate_series(1, 50) st, generate_series(1, 4) se, generate_series(1, 365) d`,
		`INSERT INTO sensor_status (station, sensor) SELECT DISTINCT station, sensor FROM readings_1d`,
		`ANALYZE`,
	)
	to := t0.Add(24 * time.Hour)
	queries := []struct {
		name string
		sql  string
		args []any
		// seqScan marks the control: a query that must scan readings
		// whole, so that the test shows it can tell.
		seqScan bool
	}{
		{"control", `SELECT count(*) FROM readings WHERE value > $1`, []any{5.0}, true},
		{"stations", stationsSQL, []any{"", 1001}, false},
		{"station", stationSQL, []any{"s7"}, false},
		{"latest", latestSQL, []any{[]string{"s1", "s2", "s3", "s10", "s20", "s30", "s40", "s50"}}, false},
		{"readings", readingsSQL, []any{"s7", "sensor2", t0, lowerBound(nil), upperBound(&to), nil, nil, 1001}, false},
		{"readingsNextPage", readingsSQL, []any{"s7", "sensor2", t0, lowerBound(&to), upperBound(nil), []int16{3, 4}, true, 1001}, false},
		{"aggregates5m", rollups["5m"].sql, []any{"s7", "sensor2", t0, lowerBound(nil), upperBound(&to), 1001}, false},
		{"aggregates1h", rollups["1h"].sql, []any{"s7", "sensor2", t0, lowerBound(nil), upperBound(&to), 1001}, false},
		{"aggregates1d", rollups["1d"].sql, []any{"s7", "sensor2", t0.AddDate(-1, 0, 0), lowerBound(nil), upperBound(&to), 1001}, false},
		{"unit", unitSQL, []any{"s7", "sensor2"}, false},
		{"sparklines", sparklineSQL, []any{[]string{"s1", "s2"}, []string{"sensor1", "sensor2"}, []time.Time{to, to}}, false},
	}
	for _, generic := range []bool{false, true} {
		for _, q := range queries {
			t.Run(fmt.Sprintf("%s/generic=%v", q.name, generic), func(t *testing.T) {
				scans := db.Scans(t, generic, q.sql, q.args...)
				var seq []string
				for _, s := range scans {
					// stations, sensor_status and reading_series have a row
					// per station or series: scanning them whole is cheap.
					if s.Node == "Seq Scan" && strings.HasPrefix(s.Relation, "readings") {
						seq = append(seq, s.Relation)
					}
				}
				if (len(seq) > 0) != q.seqScan {
					t.Errorf("sequential scans of %v; plan scans %v", seq, scans)
				}
			})
		}
	}
}

// TestLatestProbesTheNewestMonthOnly checks what latestSQL reads in a year
// of monthly partitions (12 stations, 4 sensors each, a reading every 6
// hours, analyzed), of which sensor4 stopped reporting in June: one index
// probe per sensor into the partition of its newest reading, December's
// or June's, and nothing of the other eleven months, the default
// partition or the months made ahead. The control, the same query without
// the month's bounds, probes every partition for every sensor.
func TestLatestProbesTheNewestMonthOnly(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	if _, err := partition.Ensure(ctx, db.Pool, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	db.Exec(t,
		`INSERT INTO stations (id) SELECT 's' || i FROM generate_series(1, 12) i`,
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT 's' || st, 'sensor' || se, '2024-01-01'::timestamptz + h * interval '6 hours', h, 'Cel'
		 FROM generate_series(1, 12) st, generate_series(1, 4) se, generate_series(0, 366 * 4 - 1) h
		 WHERE se < 4 OR h < 170 * 4`,
		`ANALYZE`,
	)
	const bounds = ` AND r.ts < (s.latest_month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC'`
	control := strings.Replace(latestSQL, "\n\t   AND r.ts >= s.latest_month"+bounds, "", 1)
	if control == latestSQL {
		t.Fatal("latestSQL no longer bounds its first probe to the month the control leaves out")
	}
	stations := []string{"s1", "s2", "s3", "s4", "s5"}
	want := map[string]int{"readings_p2024_12": 3 * len(stations), "readings_p2024_06": len(stations)}

	runs := db.Ran(t, latestSQL, stations)
	got := map[string]int{}
	for _, r := range runs {
		if !strings.HasPrefix(r.Relation, "readings") {
			continue
		}
		if r.Node != "Index Scan" && r.Node != "Index Only Scan" {
			t.Errorf("%v: want index probes only", r)
		}
		got[r.Relation] += r.Loops
	}
	if !maps.Equal(got, want) {
		t.Errorf("probes per partition %v, want %v; ran %v", got, want, runs)
	}

	probed := map[string]bool{}
	for _, r := range db.Ran(t, control, stations) {
		if strings.HasPrefix(r.Relation, "readings_") {
			probed[r.Relation] = true
		}
	}
	if len(probed) < 14 {
		t.Errorf("the control probed %d partitions, want every one (12 months, 2 ahead, the default): %v", len(probed), probed)
	}
}
