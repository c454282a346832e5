package rollup_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup"
)

// BenchmarkWrite measures what the invalidation triggers add to a commit:
// batches of 500 new readings of 60 series (5 stations, 12 sensors, one
// reading per series and second, as cmd/bench's drain), with the triggers
// and without. Compare the ns/op.
func BenchmarkWrite(b *testing.B) {
	t0 := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	const batch = 500
	batchOf := func(i int) []sensorhub.Reading {
		readings := make([]sensorhub.Reading, 0, batch)
		for j := range batch {
			n := i*batch + j
			readings = append(readings, sensorhub.Reading{Station: fmt.Sprintf("st%d", n%5), Sensor: fmt.Sprintf("s%d", n/5%12),
				Time: t0.Add(time.Duration(n/60) * time.Second), Value: 1, Unit: "Cel"})
		}
		return readings
	}
	for _, triggers := range []bool{false, true} {
		b.Run(fmt.Sprintf("triggers=%t", triggers), func(b *testing.B) {
			db := postgrestest.New(b)
			if !triggers {
				for _, tr := range []string{"readings_rollup_insert", "readings_rollup_update", "readings_rollup_delete"} {
					if _, err := db.Pool.Exec(b.Context(), "ALTER TABLE readings DISABLE TRIGGER "+tr); err != nil {
						b.Fatal(err)
					}
				}
			}
			sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: quiet, DisableEvents: true})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := sink.Write(b.Context(), sensorhub.Batch{Readings: batchOf(i)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkLivePass measures a Worker pass as the service runs them live:
// 1,000 stations send each of the built-in sensors in turn, 10,000
// readings a second of device time, and each pass takes the 2,000 buckets
// changed since the last, one reading each, of series whose 5-minute
// buckets, hours and days exist. The readings are written with the timer
// stopped; the µs/bucket metric is a pass's time per bucket it took.
func BenchmarkLivePass(b *testing.B) {
	ctx := b.Context()
	db := postgrestest.New(b)
	t0 := time.Date(2024, 12, 1, 10, 0, 0, 0, time.UTC)
	db.Exec(b, `CREATE TABLE readings_p2024_12 PARTITION OF readings FOR VALUES FROM ('2024-12-01') TO ('2025-01-01')`)
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: quiet, DisableEvents: true})
	if err != nil {
		b.Fatal(err)
	}
	w, err := rollup.NewWorker(rollup.Config{DB: db.Pool, Types: builtinTypes, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	const stations, pass = 1000, 2000
	sensors := make([]string, 0, len(builtinTypes))
	for _, t := range builtinTypes {
		sensors = append(sensors, t.Name)
	}
	series := stations * len(sensors)
	next := 0
	send := func(n int) {
		readings := make([]sensorhub.Reading, 0, n)
		for range n {
			i := next
			next++
			readings = append(readings, sensorhub.Reading{Station: fmt.Sprint("live-", i%stations), Sensor: sensors[i/stations%len(sensors)],
				Time: t0.Add(time.Duration(i) * 100 * time.Microsecond), Value: float64(i % 97), Unit: "1"})
		}
		for from := 0; from < n; from += 500 {
			if _, err := sink.Write(ctx, sensorhub.Batch{Readings: readings[from:min(from+500, n)]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	work := func() int {
		n, err := w.Work(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	send(series)
	for work() > 0 {
		// until every series has its rollups
	}
	buckets := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		send(pass)
		b.StartTimer()
		buckets += work()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(buckets), "µs/bucket")
}
