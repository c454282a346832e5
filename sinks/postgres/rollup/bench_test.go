package rollup_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
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
