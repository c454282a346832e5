package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// insertTracer records, per write, which inserts of readings ran: "new" for
// the insert that fails on a stored key, "skip" for the one with ON
// CONFLICT DO NOTHING.
type insertTracer struct {
	mu   sync.Mutex
	took []string
}

func (t *insertTracer) record(sql string) {
	if !strings.Contains(sql, "INSERT INTO readings (station, sensor, ts, value, unit, raw_value)") {
		return
	}
	kind := "new"
	if strings.Contains(sql, "ON CONFLICT DO NOTHING") {
		kind = "skip"
	}
	t.mu.Lock()
	t.took = append(t.took, kind)
	t.mu.Unlock()
}

// since returns what ran since the last call.
func (t *insertTracer) since() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := strings.Join(t.took, ",")
	t.took = nil
	return out
}

func (t *insertTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.record(d.SQL)
	return ctx
}

func (t *insertTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t *insertTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	for _, q := range d.Batch.QueuedQueries {
		t.record(q.SQL)
	}
	return ctx
}

func (t *insertTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *insertTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TestInsertTriesNewReadingsFirst follows which insert each write runs: new
// readings without ON CONFLICT, a stored key making the write insert again
// with it, and later writes using it at once until one meets no stored key.
// The outcomes are those of a single insert with ON CONFLICT DO NOTHING.
func TestInsertTriesNewReadingsFirst(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	tracer := &insertTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := newSink(t, pool, nil)
	at := func(minute int) sensorhub.Reading {
		r := reference
		r.Time = r.Time.Add(time.Duration(minute) * time.Minute)
		return r
	}
	conflicting := at(0)
	conflicting.Value = 15
	for _, step := range []struct {
		name                          string
		batch                         []sensorhub.Reading
		stored, duplicates, conflicts int
		took                          string
	}{
		{"new readings", []sensorhub.Reading{at(0), at(1)}, 2, 0, 0, "new"},
		{"a stored key", []sensorhub.Reading{at(1), at(2)}, 1, 1, 0, "new,skip"},
		{"after stored keys", []sensorhub.Reading{at(3)}, 1, 0, 0, "skip"},
		{"after a write without", []sensorhub.Reading{at(4), at(5)}, 2, 0, 0, "new"},
		{"one key twice", []sensorhub.Reading{at(6), at(6)}, 1, 1, 0, "skip"},
		{"after a repeated key", []sensorhub.Reading{at(7)}, 1, 0, 0, "new"},
		{"a conflicting value", []sensorhub.Reading{conflicting, at(8)}, 1, 0, 1, "new,skip"},
	} {
		wantResult(t, write(t, s, step.batch...), step.stored, step.duplicates, step.conflicts)
		if took := tracer.since(); took != step.took {
			t.Errorf("%s: inserts %q, want %q", step.name, took, step.took)
		}
	}
	if n := countRows(t, db); n != 9 {
		t.Errorf("%d rows, want 9", n)
	}
}
