package derived

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestReadingsAreReadByKey checks the plans of the statements that read
// ranges of readings, for 10 s of each of 10 stations in a young partition
// (10 stations, 5 types, 30 minutes a second apart: 90,000 rows,
// analyzed), bound (custom plans) and not (the generic plans pgx's cached
// statements end up with): they read the partition through its primary
// key's index only, where the plain join over the same ranges, the
// control, scans it whole.
func TestReadingsAreReadByKey(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	db.Exec(t,
		`CREATE TABLE readings_p2024_12 PARTITION OF readings FOR VALUES FROM ('2024-12-01') TO ('2025-01-01')`,
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT 's' || st, se, '2024-12-01'::timestamptz + s * interval '1 second', s, 'x'
		 FROM generate_series(1, 10) st, unnest('{temperature,humidity,wind_speed,pressure,rain}'::text[]) se, generate_series(1, 1800) s`,
		`ANALYZE`,
	)
	t0 := time.Date(2024, 12, 1, 0, 20, 0, 0, time.UTC)
	var stations, sensors []string
	var los, his []time.Time
	for st := 1; st <= 10; st++ {
		for _, se := range []string{"temperature", "humidity", "wind_speed", "pressure"} {
			stations, sensors = append(stations, fmt.Sprint("s", st)), append(sensors, se)
			los, his = append(los, t0), append(his, t0.Add(10*time.Second))
		}
	}
	primaries := []any{stations, sensors, los, his}
	partners := []any{stations, sensors, los, his, time.Minute}
	rainStations := make([]string, 10)
	for i := range rainStations {
		rainStations[i] = fmt.Sprint("s", i+1)
	}
	times := func(at time.Time) []time.Time {
		out := make([]time.Time, len(rainStations))
		for i := range out {
			out[i] = at
		}
		return out
	}
	totals := make([]string, len(rainStations))
	for i := range totals {
		totals[i] = "0"
	}
	var goneStations, goneSensors []string
	var goneTimes []time.Time
	for i := range 1000 {
		goneStations, goneSensors = append(goneStations, stations[i%len(stations)]), append(goneSensors, sensors[i%len(sensors)])
		goneTimes = append(goneTimes, t0.Add(time.Duration(i/len(stations))*time.Second))
	}
	derived := []any{[]string{}, []string{}, []time.Time{}, []float64{}, []string{}, goneStations, goneSensors, goneTimes}
	window := 15 * time.Minute
	ratesOn := []any{rainStations, times(t0), totals, times(t0.Add(10 * time.Second)), times(t0.Add(10 * time.Second)),
		times(t0.Add(10 * time.Second)), window, 3600 / window.Seconds(), []string{}, []time.Time{}}
	rates := []any{rainStations, times(t0), times(t0.Add(10 * time.Second)), window - time.Microsecond, []string{}, []time.Time{},
		3600 / window.Seconds(), rainStations, times(t0.Add(10 * time.Second)), rainStations, times(t0.Add(10 * time.Second)), window}
	control := `SELECT k.station, k.sensor, p.ts, p.value
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS k(station, sensor, lo, hi)
JOIN readings p ON p.station = k.station AND p.sensor = k.sensor AND p.ts BETWEEN k.lo AND k.hi AND p.qc_flag <> 4`
	whole := postgrestest.Scan{Node: "Seq Scan", Relation: "readings_p2024_12"}
	for _, c := range []struct {
		name    string
		sql     string
		args    []any
		generic bool
		control bool
	}{
		{"control", control, primaries, false, true},
		{"primaries/custom", selectPrimaries, primaries, false, false},
		{"primaries/generic", selectPrimaries, primaries, true, false},
		{"partners/custom", selectPartners, partners, false, false},
		{"partners/generic", selectPartners, partners, true, false},
		{"rates on totals/custom", writeRainRatesOn, ratesOn, false, false},
		{"rates on totals/generic", writeRainRatesOn, ratesOn, true, false},
		{"rates/custom", writeRainRates, rates, false, false},
		{"rates/generic", writeRainRates, rates, true, false},
		{"derived/custom", writeDerived, derived, false, false},
		{"derived/generic", writeDerived, derived, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			scans := db.Scans(t, c.generic, c.sql, c.args...)
			if got := slices.Contains(scans, whole); got != c.control {
				t.Errorf("reads %v: %v, want %v; plan reads %v", whole, got, c.control, scans)
			}
		})
	}
}
