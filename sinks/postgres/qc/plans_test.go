package qc

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestUpdateFlagsLooksKeysUp checks the plan of updateFlags in a young
// partition (5 stations, 13 types, 10 minutes a second apart: 39,000
// rows, analyzed) for 500 keys, bound (a custom plan) and not (the generic
// plan pgx's cached statement ends up with): it reads readings through
// the primary key's index only, where the plain join over the same keys,
// the control, scans the partition whole.
func TestUpdateFlagsLooksKeysUp(t *testing.T) {
	t.Parallel()
	db, t0 := youngPartition(t)
	var stations, sensors, tests []string
	var times []time.Time
	var flags []int16
	for st := 1; st <= 5; st++ {
		for se := 1; se <= 10; se++ {
			for s := 591; s <= 600; s++ {
				stations, sensors = append(stations, fmt.Sprint("s", st)), append(sensors, fmt.Sprint("sensor", se))
				times, flags, tests = append(times, t0.Add(time.Duration(s)*time.Second)), append(flags, 1), append(tests, "")
			}
		}
	}
	args := []any{stations, sensors, times, flags, tests}
	control := strings.TrimSuffix(updateFlags, " AND k.flag BETWEEN 1 AND 4")
	if control == updateFlags {
		t.Fatal("updateFlags no longer ends with the condition the control leaves out")
	}
	for _, c := range []struct {
		name    string
		sql     string
		generic bool
		seqScan bool
	}{
		{"control", control, false, true},
		{"custom", updateFlags, false, false},
		{"generic", updateFlags, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			nodes := db.Scans(t, c.generic, c.sql, args...)
			if seq := slices.Contains(nodes, postgrestest.Scan{Node: "Seq Scan", Relation: "readings_p2024_12"}); seq != c.seqScan {
				t.Errorf("sequential scan of the partition %v, want %v; plan reads %v", seq, c.seqScan, nodes)
			}
		})
	}
}

// TestContextsAreReadByKey checks the plan of selectContexts, as
// TestUpdateFlagsLooksKeysUp does, for the 65 series of the partition: it
// reads each series' readings before its time through the primary key's
// index, bound and not.
func TestContextsAreReadByKey(t *testing.T) {
	t.Parallel()
	db, t0 := youngPartition(t)
	var stations, sensors []string
	var los []time.Time
	for st := 1; st <= 5; st++ {
		for se := 1; se <= 13; se++ {
			stations, sensors, los = append(stations, fmt.Sprint("s", st)), append(sensors, fmt.Sprint("sensor", se)), append(los, t0.Add(590*time.Second))
		}
	}
	for _, generic := range []bool{false, true} {
		t.Run(fmt.Sprintf("generic=%v", generic), func(t *testing.T) {
			nodes := db.Scans(t, generic, selectContexts, stations, sensors, los, firstContextPage)
			if slices.Contains(nodes, postgrestest.Scan{Node: "Seq Scan", Relation: "readings_p2024_12"}) {
				t.Errorf("scans the partition whole; plan reads %v", nodes)
			}
		})
	}
}

// youngPartition returns a database whose readings are in a young
// partition, December 2024, which holds 5 stations' 13 types' 600
// readings a second apart from t0, its start, analyzed.
func youngPartition(t *testing.T) (db *postgrestest.DB, t0 time.Time) {
	t.Helper()
	db = postgrestest.New(t)
	t0 = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	if _, err := partition.Ensure(t.Context(), db.Pool, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.Exec(t,
		`INSERT INTO readings (station, sensor, ts, value, unit, qc_flag)
		 SELECT 's' || st, 'sensor' || se, '2024-12-01'::timestamptz + s * interval '1 second', s, 'Cel', 1
		 FROM generate_series(1, 5) st, generate_series(1, 13) se, generate_series(1, 600) s`,
		`ANALYZE readings`,
	)
	return db, t0
}
