package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// arrivalRecorder is an Observer that remembers what it was given, writes a row
// of its own in the transaction and returns one event, or fails.
type arrivalRecorder struct {
	calls [][]sensorhub.Reading
	fail  error
}

func (r *arrivalRecorder) Observe(ctx context.Context, tx pgx.Tx, stored []sensorhub.Reading) ([]sensorhub.Event, error) {
	r.calls = append(r.calls, slices.Clone(stored))
	if r.fail != nil {
		return nil, r.fail
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS processed (n int); INSERT INTO processed VALUES (1)`); err != nil {
		return nil, err
	}
	e, err := sensorhub.NewReadingEvent(stored[0], "test.processed", 1, len(stored))
	return []sensorhub.Event{e}, err
}

func newObservedSink(t *testing.T, db *postgrestest.DB, p postgres.Observer) *postgres.Sink {
	t.Helper()
	s, err := postgres.New(postgres.Config{DB: db.Pool, Logger: slog.New(slog.DiscardHandler), Observers: []postgres.Observer{p}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestObserverSeesNewReadingsOnly: an observer runs in the transaction
// with the readings stored for the first time, not at all when there are
// none, and its events go between readings.stored and the handlers'.
func TestObserverSeesNewReadingsOnly(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	p := &arrivalRecorder{}
	s := newObservedSink(t, db, p)
	write(t, s, reference)

	roof := reference
	roof.Station = "roof"
	custom, err := sensorhub.NewEvent("test.custom", 1, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reference, roof}, Events: []sensorhub.Event{custom}}); err != nil {
		t.Fatal(err)
	}
	write(t, s, reference, roof) // nothing new: no call

	if want := [][]sensorhub.Reading{{reference}, {roof}}; !slices.EqualFunc(p.calls, want, slices.Equal) {
		t.Fatalf("observer calls = %+v, want %+v", p.calls, want)
	}
	var types []string
	for _, e := range outboxEvents(t, db) {
		types = append(types, e.Type)
	}
	if want := []string{"readings.stored", "test.processed", "readings.stored", "test.processed", "test.custom"}; !slices.Equal(types, want) {
		t.Fatalf("outbox holds %v, want %v", types, want)
	}
}

// TestObserverErrorRollsBack: a failing observer rolls the readings
// back, and its error is transient, so that the batch is retried.
func TestObserverErrorRollsBack(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	boom := errors.New("boom")
	s := newObservedSink(t, db, &arrivalRecorder{fail: boom})
	_, err := s.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reference}})
	if !errors.Is(err, boom) || sensorhub.IsPermanent(err) {
		t.Fatalf("Write = %v, want the observer's error, transient", err)
	}
	if n := countRows(t, db); n != 0 {
		t.Fatalf("%d readings stored by a rolled-back transaction", n)
	}
}

func TestObserversNeedEvents(t *testing.T) {
	t.Parallel()
	_, err := postgres.New(postgres.Config{DB: unusableDB{}, DisableEvents: true, Observers: []postgres.Observer{&arrivalRecorder{}, nil}})
	if err == nil || !strings.Contains(err.Error(), "DisableEvents") || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("New = %v, want errors about DisableEvents and the nil observer", err)
	}
}
