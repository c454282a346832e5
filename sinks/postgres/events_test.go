package postgres_test

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

func outboxEvents(t *testing.T, db *postgrestest.DB) []sensorhub.Event {
	t.Helper()
	events, err := outbox.List(t.Context(), db.Pool, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestWriteInsertsOneReadingsStoredEventPerTransaction(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	write(t, s, reference)

	roof := reference
	roof.Station, roof.Value = "roof", 1.5
	custom, err := sensorhub.NewEvent("test.custom", 1, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	// One transaction: a new reading, a duplicate, and a handler's event.
	if _, err := s.WriteBatches(t.Context(), []sensorhub.Batch{
		{Readings: []sensorhub.Reading{roof}, Events: []sensorhub.Event{custom}},
		{Readings: []sensorhub.Reading{reference}},
	}); err != nil {
		t.Fatal(err)
	}
	write(t, s, reference, roof) // nothing new: no event

	events := outboxEvents(t, db)
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	if want := []string{"readings.stored", "readings.stored", "test.custom"}; !slices.Equal(types, want) {
		t.Fatalf("outbox holds %v, want %v", types, want)
	}
	var second sensorhub.ReadingsStored
	if err := events[1].Decode(&second); err != nil {
		t.Fatal(err)
	}
	want := []sensorhub.StoredReading{{Station: "roof", Sensor: "temperature", Time: reference.Time, Value: 1.5, Unit: "Cel"}}
	if !slices.Equal(second.Readings, want) {
		t.Errorf("second readings.stored lists %+v, want only the new reading %+v", second.Readings, want)
	}
	if string(events[1].Payload) != `{"readings":[{"station":"roof","sensor":"temperature","ts":"2024-12-01T12:00:00Z","value":1.5,"unit":"Cel"}]}` {
		t.Errorf("payload %s", events[1].Payload)
	}
	if events[0].UUID == events[1].UUID || time.Since(events[1].Time) > time.Minute || events[1].Time.Location() != time.UTC {
		t.Errorf("events %+v: want distinct UUIDs and a recent UTC time", events)
	}
}

func TestFailedTransactionInsertsNoEvent(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	bad := reference
	bad.Station = "nul\x00byte" // PostgreSQL rejects it: 22021
	custom, err := sensorhub.NewEvent("test.custom", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reference, bad}, Events: []sensorhub.Event{custom}}); err == nil {
		t.Fatal("Write of a rejected reading succeeded")
	}
	if events := outboxEvents(t, db); len(events) != 0 {
		t.Errorf("a rolled-back transaction left events %+v", events)
	}
}

// TestDisableEventsWritesNoOutbox checks that with events off a batch of
// readings stores them without a readings.stored event, and that a batch
// carrying a handler's event is refused as permanent, with nothing stored,
// rather than losing the event.
func TestDisableEventsWritesNoOutbox(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s, err := postgres.New(postgres.Config{DB: db.Pool, DisableEvents: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reference}}); err != nil || res.Stored != 1 {
		t.Fatalf("Write = %+v, %v; want the reading stored", res, err)
	}
	e, err := sensorhub.NewEvent("frost.warning", 1, map[string]string{"station": "roof"})
	if err != nil {
		t.Fatal(err)
	}
	later := reference
	later.Time = later.Time.Add(time.Minute)
	_, err = s.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{later}, Events: []sensorhub.Event{e}})
	if sensorhub.ReasonOf(err) != sensorhub.ReasonEventsDisabled {
		t.Fatalf("Write with a handler event = %v, want a permanent error of reason %s", err, sensorhub.ReasonEventsDisabled)
	}
	if events := outboxEvents(t, db); len(events) != 0 {
		t.Errorf("events written with DisableEvents: %+v", events)
	}
	var n int
	if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM readings`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d readings stored (%v), want only the first", n, err)
	}
}

// TestWriteListsALargeTransactionAcrossEvents: a transaction storing more
// than sensorhub.MaxReadingsPerEvent readings writes several readings.stored
// events, which list every reading once, in order, before the batch's own
// events.
func TestWriteListsALargeTransactionAcrossEvents(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	n := 2*sensorhub.MaxReadingsPerEvent + 1
	readings := make([]sensorhub.Reading, n)
	for i := range readings {
		readings[i] = reference
		readings[i].Time = reference.Time.Add(time.Duration(i) * time.Second)
	}
	custom, err := sensorhub.NewEvent("test.custom", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Write(t.Context(), sensorhub.Batch{Readings: readings, Events: []sensorhub.Event{custom}}); err != nil || res.Stored != n {
		t.Fatalf("Write = %+v, %v", res, err)
	}
	events := outboxEvents(t, db)
	if len(events) != 4 || events[3].UUID != custom.UUID {
		t.Fatalf("outbox holds %d events, want 3 readings.stored then the handler's", len(events))
	}
	var listed []time.Time
	for _, e := range events[:3] {
		var p sensorhub.ReadingsStored
		if err := e.Decode(&p); err != nil || e.Type != sensorhub.EventReadingsStored {
			t.Fatalf("event %+v: %v", e, err)
		}
		for _, r := range p.Readings {
			listed = append(listed, r.Time)
		}
	}
	for i, r := range readings {
		if i >= len(listed) || !listed[i].Equal(r.Time) {
			t.Fatalf("reading %d not listed in order; %d listed", i, len(listed))
		}
	}
	if len(listed) != n {
		t.Errorf("%d readings listed, want %d", len(listed), n)
	}
}
