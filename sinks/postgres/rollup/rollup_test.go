package rollup_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup/rolluptest"
)

// defaultZone is the zone of the days of stations without one in these
// tests: half an hour off UTC, so that a day bucketed in UTC shows.
const defaultZone = "America/St_Johns"

// oracleStations are the stations of the oracle test and their zones
// ("" follows defaultZone).
var oracleStations = map[string]string{
	"berlin":   "Europe/Berlin",       // DST on 2024-03-31 and 2024-10-27: 23- and 25-hour days
	"lordhowe": "Australia/Lord_Howe", // 30-minute DST shift on 2024-04-07 and 2024-10-06
	"nozone":   "",
}

// oracleWindows are the device-time ranges readings fall in: a few days
// around each DST change.
var oracleWindows = []time.Time{
	time.Date(2024, 3, 30, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 4, 6, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 10, 5, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 10, 26, 0, 0, 0, 0, time.UTC),
}

// oracleSensors are the sensors of the oracle test, one of each kind and
// the weight of the vector one, with the ranges of their random values.
var oracleSensors = []struct {
	name     string
	min, max float64
}{
	{"temperature", -15, 35}, {"rain", 0, 3}, {"wind_direction", 0, 360}, {"wind_speed", 0, 20}, {"battery", 3, 4.2},
	{"dew_point", -20, 20}, // a type no registered type names: instant
}

// randomReadings returns n readings at random times of the windows, on
// whole seconds (wind speed and direction often share a time).
func randomReadings(rng *rand.Rand, n int) []sensorhub.Reading {
	stations := slices.Sorted(func(yield func(string) bool) {
		for s := range oracleStations {
			if !yield(s) {
				return
			}
		}
	})
	out := make([]sensorhub.Reading, n)
	for i := range out {
		s := oracleSensors[rng.IntN(len(oracleSensors))]
		w := oracleWindows[rng.IntN(len(oracleWindows))]
		ts := w.Add(time.Duration(rng.IntN(3*24*3600/20)) * 20 * time.Second)
		out[i] = sensorhub.Reading{Station: stations[rng.IntN(len(stations))], Sensor: s.name, Time: ts,
			Value: s.min + rng.Float64()*(s.max-s.min), Unit: unitOf(s.name)}
	}
	// Wind direction with a speed at the same time, mostly.
	for i, r := range out {
		if r.Sensor == "wind_direction" && rng.IntN(4) > 0 {
			out = append(out, sensorhub.Reading{Station: r.Station, Sensor: "wind_speed", Time: r.Time, Value: rng.Float64() * 20, Unit: "m/s"})
		}
		_ = i
	}
	return out
}

// unitOf returns the unit of a registered sensor type, Cel for others.
func unitOf(sensor string) string {
	for _, t := range builtinTypes {
		if t.Name == sensor {
			return t.Unit
		}
	}
	return "Cel"
}

// oracleSetup creates the stations, with their zones, and expected
// intervals for some series.
func oracleSetup(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	for s, zone := range oracleStations {
		if _, err := pool.Exec(ctx, `INSERT INTO stations (id, timezone) VALUES ($1, nullif($2, ''))`, s, zone); err != nil {
			t.Fatal(err)
		}
	}
	intervals := map[[2]string]float64{{"berlin", "temperature"}: 60, {"lordhowe", "rain"}: 300}
	for k, v := range intervals {
		if _, err := pool.Exec(ctx, `INSERT INTO sensor_status (station, sensor, interval_s) VALUES ($1, $2, $3)`, k[0], k[1], v); err != nil {
			t.Fatal(err)
		}
	}
}

// deliver writes readings through the sink in random batches, out of
// order and with duplicates, from several goroutines, and meanwhile adds
// calibrations and flags readings 4 (fail) and back.
func deliver(t *testing.T, ctx context.Context, rng *rand.Rand, pool *pgxpool.Pool, readings []sensorhub.Reading) {
	t.Helper()
	sink, err := postgres.New(postgres.Config{DB: pool, DisableEvents: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cal, err := calibration.New(calibration.Config{DB: pool, DisableEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	// Duplicates, then out of order.
	for range len(readings) / 10 {
		readings = append(readings, readings[rng.IntN(len(readings))])
	}
	rng.Shuffle(len(readings), func(i, j int) { readings[i], readings[j] = readings[j], readings[i] })
	var batches [][]sensorhub.Reading
	for len(readings) > 0 {
		n := min(len(readings), 1+rng.IntN(60))
		batches = append(batches, readings[:n])
		readings = readings[n:]
	}
	var wg sync.WaitGroup
	next := make(chan []sensorhub.Reading)
	for range 4 {
		wg.Go(func() {
			for b := range next {
				if _, err := sink.Write(ctx, sensorhub.Batch{Readings: b}); err != nil {
					t.Errorf("write: %v", err)
				}
			}
		})
	}
	for i, b := range batches {
		next <- b
		switch i {
		case len(batches) / 3:
			// A calibration of a past period, re-applied to stored readings.
			if _, _, err := cal.Add(ctx, calibration.Calibration{Station: "berlin", Sensor: "temperature",
				From: oracleWindows[0].Add(20 * time.Hour), To: oracleWindows[3].Add(30 * time.Hour), Scale: 1.01, Offset: -0.5}); err != nil {
				t.Error(err)
			}
		case len(batches) / 2:
			flag(t, ctx, pool, 4, 7)
		case 2 * len(batches) / 3:
			if _, _, err := cal.Add(ctx, calibration.Calibration{Station: "lordhowe", Sensor: "rain", Scale: 2}); err != nil {
				t.Error(err)
			}
			flag(t, ctx, pool, 2, 11) // some back from 4
			// A zone change moves the station's days.
			if _, err := pool.Exec(ctx, `UPDATE stations SET timezone = 'Asia/Kolkata' WHERE id = 'nozone'`); err != nil {
				t.Error(err)
			}
		}
	}
	close(next)
	wg.Wait()
	flag(t, ctx, pool, 4, 13)
}

// flag sets qc_flag of every readings whose second of device time is a
// multiple of every, as QC would.
func flag(t *testing.T, ctx context.Context, pool *pgxpool.Pool, to, every int) {
	t.Helper()
	if _, err := pool.Exec(ctx, `UPDATE readings SET qc_flag = $1 WHERE (extract(epoch FROM ts)::bigint / 20) % $2 = 0`, to, every); err != nil {
		t.Error(err)
	}
}

// startWorker starts a Worker over a pool of its own, as a replica has.
func startWorker(t *testing.T, ctx context.Context, db *postgrestest.DB) *rollup.Worker {
	t.Helper()
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w, err := rollup.NewWorker(rollup.Config{DB: pool, Types: builtinTypes, Zone: defaultZone, Interval: 50 * time.Millisecond, Batch: 300, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return w
}

func TestRollupsMatchOracle(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := postgrestest.New(t)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, uint64(workers)))
			oracleSetup(t, ctx, db.Pool)
			for range workers {
				startWorker(t, ctx, db)
			}
			deliver(t, ctx, rng, db.Pool, randomReadings(rng, 4000))
			rolluptest.Settle(t, ctx, db.Pool, 2*time.Minute)
			rows := rolluptest.Check(t, ctx, db.Pool, defaultZone, builtinTypes)
			t.Logf("%d, %d and %d rollup rows", rows[0], rows[1], rows[2])
		})
	}
}

// randomReadingsSeeded is randomReadings from a fixed seed.
func randomReadingsSeeded(seed uint64, n int) []sensorhub.Reading {
	return randomReadings(rand.New(rand.NewPCG(seed, seed)), n)
}

// TestAppendedBucketsMatchOracle sends dense series in device-time order,
// as stations do, while two workers run, so that most passes append to
// their buckets instead of recomputing them (from5mReadings), some of them
// readings stored while a pass worked on their bucket; among them
// land late readings, duplicates, a calibration of stored readings, flags
// to fail and back, and deleted readings, which each make the next pass
// recompute whole. Once settled, every rollup equals the oracle's.
func TestAppendedBucketsMatchOracle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.New(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	oracleSetup(t, ctx, db.Pool)
	for range 2 {
		startWorker(t, ctx, db)
	}
	sink, err := postgres.New(postgres.Config{DB: db.Pool, DisableEvents: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cal, err := calibration.New(calibration.Config{DB: db.Pool, DisableEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	// 10 minutes of a reading every 3 s per series: two buckets of 100.
	start := oracleWindows[1].Add(time.Duration(rng.IntN(48)) * time.Hour)
	var held []sensorhub.Reading
	for step := range 200 {
		ts := start.Add(time.Duration(step) * 3 * time.Second)
		var batch []sensorhub.Reading
		for _, station := range []string{"berlin", "lordhowe"} {
			for _, s := range oracleSensors {
				r := sensorhub.Reading{Station: station, Sensor: s.name, Time: ts, Value: s.min + rng.Float64()*(s.max-s.min), Unit: unitOf(s.name)}
				switch n := rng.IntN(100); {
				case n < 4:
					held = append(held, r) // arrives late
				case n < 8:
					batch = append(batch, r, r) // twice
				default:
					batch = append(batch, r)
				}
			}
		}
		if step%25 == 24 && len(held) > 0 { // the late ones, a minute or more after their time
			batch, held = append(batch, held...), nil
		}
		if _, err := sink.Write(ctx, sensorhub.Batch{Readings: batch}); err != nil {
			t.Fatal(err)
		}
		switch step {
		case 80:
			if _, _, err := cal.Add(ctx, calibration.Calibration{Station: "berlin", Sensor: "temperature",
				From: start.Add(time.Minute), To: start.Add(4 * time.Minute), Scale: 1.01, Offset: -0.5}); err != nil {
				t.Fatal(err)
			}
		case 120:
			flag(t, ctx, db.Pool, 4, 7)
		case 160:
			flag(t, ctx, db.Pool, 2, 11)
			if _, err := db.Pool.Exec(ctx, `DELETE FROM readings WHERE station = 'lordhowe' AND sensor = 'battery' AND ts < $1`, ts.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if step%2 == 0 {
			// Let the workers pass between some writes, as they do
			// between a station's readings; the others land during passes.
			settle(t, ctx, db.Pool)
		}
	}
	if _, err := sink.Write(ctx, sensorhub.Batch{Readings: held}); err != nil {
		t.Fatal(err)
	}
	rolluptest.Settle(t, ctx, db.Pool, 2*time.Minute)
	rows := rolluptest.Check(t, ctx, db.Pool, defaultZone, builtinTypes)
	t.Logf("%d, %d and %d rollup rows", rows[0], rows[1], rows[2])
}

// settle waits, polling every 5 ms, until no invalidation is pending.
func settle(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var pending bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM rollup_invalidations)`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if !pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("invalidations still pending after a minute")
		}
	}
}
