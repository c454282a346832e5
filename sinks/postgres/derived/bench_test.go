package derived_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// BenchmarkRainRate replays the rain of cmd/bench's live phase through the
// sink and the processor: 1,000 stations, each sending a rain amount and a
// running total every 1.3 s at the same device time, a commit per 100 ms
// of device time (about 77 of each), after a full rain-rate window of
// readings is stored and 30 s of device time have gone through the sink.
// An op is a commit; rain-ms/op is the time its rain-rate statements took,
// round trip included.
func BenchmarkRainRate(b *testing.B) {
	const (
		stations = 1000
		every    = 1300 * time.Millisecond
		commit   = 100 * time.Millisecond
	)
	t0 := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	db := postgrestest.New(b)
	ctx := b.Context()
	// A window of rain before t0 + window, stored directly.
	window := derived.DefaultRainRateWindow
	if _, err := db.Pool.Exec(ctx, `INSERT INTO stations (id) SELECT 'st' || s FROM generate_series(0, $1 - 1) s`, stations); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit)
SELECT 'st' || s, sensor, $1::timestamptz + (s * $3 / $2 + k * $3) * interval '1 microsecond',
  CASE sensor WHEN 'rain' THEN ((k + s) % 4) * 0.1 ELSE 12.4 END, 'mm'
FROM generate_series(0, $2 - 1) s, generate_series(0, $4) k, unnest(ARRAY['rain', 'rain_total']) sensor`,
		t0, stations, every.Microseconds(), int64(window/every)); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE readings`); err != nil {
		b.Fatal(err)
	}
	next := int64(window/every) + 1 // the first k not stored
	batch := func(i int64) []sensorhub.Reading {
		from, to := window+time.Duration(i)*commit, window+time.Duration(i+1)*commit
		var rs []sensorhub.Reading
		for s := range int64(stations) {
			phase := time.Duration(s*every.Microseconds()/stations) * time.Microsecond
			for k := max(next, int64((from-phase+every-1)/every)); phase+time.Duration(k)*every < to; k++ {
				ts := t0.Add(phase + time.Duration(k)*every)
				st := fmt.Sprintf("st%d", s)
				rs = append(rs, sensorhub.Reading{Station: st, Sensor: "rain", Time: ts, Value: float64((k+s)%4) * 0.1, Unit: "mm"},
					sensorhub.Reading{Station: st, Sensor: "rain_total", Time: ts, Value: 12.4, Unit: "mm"})
			}
		}
		return rs
	}

	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	tracer := &rainTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	proc, err := derived.New(derived.Config{})
	if err != nil {
		b.Fatal(err)
	}
	sink, err := postgres.New(postgres.Config{DB: pool, Processors: []postgres.Processor{proc}})
	if err != nil {
		b.Fatal(err)
	}
	const warm = 300 // 30 s of device time
	for i := range int64(warm) {
		if _, err := sink.Write(ctx, sensorhub.Batch{Readings: batch(i)}); err != nil {
			b.Fatal(err)
		}
	}
	tracer.total.Store(0)
	b.ResetTimer()
	for i := range int64(b.N) {
		if _, err := sink.Write(ctx, sensorhub.Batch{Readings: batch(warm + i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tracer.total.Load())/1e6/float64(b.N), "rain-ms/op")
}

// rainTracer adds up the time of the statements, and of the batches of
// statements, that write rain_rate.
type rainTracer struct {
	total atomic.Int64 // ns
}

type rainStart struct{}

func (t *rainTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "'rain_rate'") {
		return context.WithValue(ctx, rainStart{}, time.Now())
	}
	return ctx
}

func (t *rainTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if start, ok := ctx.Value(rainStart{}).(time.Time); ok {
		t.total.Add(int64(time.Since(start)))
	}
}

func (t *rainTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	for _, q := range d.Batch.QueuedQueries {
		if strings.Contains(q.SQL, "'rain_rate'") {
			return context.WithValue(ctx, rainStart{}, time.Now())
		}
	}
	return ctx
}

func (t *rainTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *rainTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.TraceQueryEnd(ctx, nil, pgx.TraceQueryEndData{})
}
