package staleness_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
)

// BenchmarkWrite measures what the Tracker adds to a commit: batches of
// 100 new readings of 20 series (5 stations, 4 sensors), with and without
// it. Compare the ns/op of the two.
func BenchmarkWrite(b *testing.B) {
	sensors := []string{"temperature", "humidity", "pressure", "wind_speed"}
	t0 := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	batchOf := func(i int) []sensorhub.Reading {
		readings := make([]sensorhub.Reading, 0, 100)
		for j := range 100 {
			readings = append(readings, sensorhub.Reading{Station: fmt.Sprintf("st%d", j%5), Sensor: sensors[j/5%4],
				Time: t0.Add(time.Duration(i*100+j) * time.Second), Value: 1, Unit: "Cel"})
		}
		return readings
	}
	// The Tracker's statement alone on known series, rolled back: no
	// commit to wait for.
	b.Run("statement", func(b *testing.B) {
		db := postgrestest.New(b)
		tracker := staleness.NewTracker(staleness.Policy{})
		sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: slog.New(slog.DiscardHandler), Observers: []postgres.Observer{tracker}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sink.Write(b.Context(), sensorhub.Batch{Readings: batchOf(-1)}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := range b.N {
			tx, err := db.Pool.Begin(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tracker.Observe(b.Context(), tx, batchOf(i)); err != nil {
				b.Fatal(err)
			}
			if err := tx.Rollback(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tracked := range []bool{false, true} {
		b.Run(fmt.Sprintf("tracker=%t", tracked), func(b *testing.B) {
			db := postgrestest.New(b)
			cfg := postgres.Config{DB: db.Pool, Logger: slog.New(slog.DiscardHandler)}
			if tracked {
				cfg.Observers = []postgres.Observer{staleness.NewTracker(staleness.Policy{})}
			}
			sink, err := postgres.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := sink.Write(b.Context(), sensorhub.Batch{Readings: batchOf(i)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
