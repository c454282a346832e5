package partition_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestReadersSeeRowsMovedOutOfTheDefaultPartition checks that a statement
// that reads readings while Ensure moves a month's rows out of the default
// partition sees them. A statement planned before the new partition was
// attached and run after the move committed saw them in neither
// partition: the rollup worker recomputed such a 5-minute bucket as empty
// and deleted it, with its invalidation taken. The move is held before
// its ATTACH so that the reader starts inside it.
func TestReadersSeeRowsMovedOutOfTheDefaultPartition(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	insert(t, db, "roof", "1985-06-01T00:00:00Z", "1985-06-15T00:00:00Z")

	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	hold := &holdAttach{reached: make(chan struct{}), pause: 300 * time.Millisecond}
	cfg.ConnConfig.Tracer = hold
	mover, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mover.Close()

	ensured := make(chan error, 1)
	go func() {
		_, err := partition.Ensure(ctx, mover, utc("1985-06-01T00:00:00Z"), utc("1985-07-01T00:00:00Z"))
		ensured <- err
	}()
	select {
	case <-hold.reached:
	case err := <-ensured:
		t.Fatalf("Ensure ended before its ATTACH: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM readings WHERE station = 'roof' AND ts >= '1985-06-01' AND ts < '1985-07-01'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := <-ensured; err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if n != 2 {
		t.Errorf("a reader during the move counted %d readings of June 1985, want 2", n)
	}
	if got := placement(t, db); got["roof 1985-06-15T00:00:00Z"] != "readings_p1985_06" {
		t.Errorf("rows after Ensure: %v, want them in readings_p1985_06", got)
	}
}

// holdAttach is a tracer that holds the first ATTACH PARTITION for pause,
// after closing reached.
type holdAttach struct {
	reached chan struct{}
	pause   time.Duration
	once    sync.Once
}

func (h *holdAttach) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "ATTACH PARTITION") {
		h.once.Do(func() {
			close(h.reached)
			time.Sleep(h.pause)
		})
	}
	return ctx
}

func (h *holdAttach) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
