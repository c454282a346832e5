// Package sensorhubtest helps users test their sensor types without Redis or
// Postgres: an in-memory Sink with the natural-key semantics of the Postgres
// sink, and Process, which runs one message through a real hub wired to it
// and returns the readings stored and the events the handlers emitted.
//
//	func TestFrost(t *testing.T) {
//		got, err := sensorhubtest.Process(t, `{"sensor":"leaf_wetness","value":12,"timestamp":"2024-12-01T12:00:00Z"}`, leafWetness())
//		if err != nil {
//			t.Fatalf("poisoned with reason %s: %v", sensorhub.ReasonOf(err), err)
//		}
//		if len(got.Readings) != 1 || len(got.Events) != 1 || got.Events[0].Type != "leaf.wet" {
//			t.Errorf("got %+v", got)
//		}
//	}
package sensorhubtest

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// key is a reading's natural key, with the time in microseconds as
// PostgreSQL stores it.
type key struct {
	station, sensor string
	micros          int64
}

// Sink is an in-memory sensorhub.Sink. Like the Postgres sink it stores a
// reading once per (station, sensor, time): a repeat with the same value and
// unit counts as a duplicate, one with another value as a conflict, and the
// first write wins. Like the Postgres sink it commits, per Write, the
// sensorhub.EventReadingsStored events listing the newly stored readings
// (none when nothing new was stored) and the batch's own events. The zero
// value is ready to use and safe for concurrent use.
type Sink struct {
	mu     sync.Mutex
	rows   map[key]sensorhub.Reading
	events []sensorhub.Event
	// emitted are the batches' own events, without readings.stored.
	emitted []sensorhub.Event
}

// Write implements sensorhub.Sink.
func (s *Sink) Write(_ context.Context, batch sensorhub.Batch) (sensorhub.WriteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows == nil {
		s.rows = make(map[key]sensorhub.Reading)
	}
	var (
		res    sensorhub.WriteResult
		stored []sensorhub.Reading
	)
	for _, r := range batch.Readings {
		k := key{r.Station, r.Sensor, r.Time.UnixMicro()}
		old, ok := s.rows[k]
		switch {
		case !ok:
			s.rows[k] = r
			stored = append(stored, r)
			res.Stored++
		case old.Value == r.Value && old.Unit == r.Unit:
			res.Duplicates++
		default:
			res.Conflicts++
		}
	}
	slices.SortFunc(stored, compareReadings)
	events, err := sensorhub.NewReadingsStored(stored)
	if err != nil {
		return sensorhub.WriteResult{}, err
	}
	s.events = append(s.events, events...)
	s.events = append(s.events, batch.Events...)
	s.emitted = append(s.emitted, batch.Events...)
	return res, nil
}

// Events returns the events committed so far, in commit order.
func (s *Sink) Events() []sensorhub.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func compareReadings(a, b sensorhub.Reading) int {
	return cmp.Or(cmp.Compare(a.Station, b.Station), cmp.Compare(a.Sensor, b.Sensor), a.Time.Compare(b.Time))
}

// Readings returns the stored readings ordered by station, sensor and time.
func (s *Sink) Readings() []sensorhub.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedReadings()
}

func (s *Sink) sortedReadings() []sensorhub.Reading {
	out := make([]sensorhub.Reading, 0, len(s.rows))
	for _, r := range s.rows {
		out = append(out, r)
	}
	slices.SortFunc(out, compareReadings)
	return out
}

// NewHub returns a hub of types, reading from an in-memory Watermill
// channel and storing into sink. It is not started: call Process on it, or
// Start it and publish to the channel yourself. It fails t for invalid
// types.
func NewHub(t testing.TB, sink sensorhub.Sink, cfg sensorhub.DecoderConfig, types ...sensorhub.SensorType) *sensorhub.Hub {
	t.Helper()
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	hub, err := sensorhub.New(sensorhub.Config{Subscriber: pubsub, Publisher: pubsub, Sink: sink, Decoder: cfg, Logger: logger}, types...)
	if err != nil {
		t.Fatalf("sensorhubtest: new hub: %v", err)
	}
	return hub
}

// Process runs one raw message through a hub of types and returns what it
// stored: the readings (ordered by station, sensor and time) and the events
// the handlers emitted with them (in handler order; the
// sensorhub.EventReadingsStored event a real sink adds is left out). An
// error is what would poison or retry the message (see
// sensorhub.IsPermanent and sensorhub.ReasonOf); nothing is returned with
// it.
func Process(t testing.TB, payload string, types ...sensorhub.SensorType) (sensorhub.Batch, error) {
	t.Helper()
	sink := &Sink{}
	hub := NewHub(t, sink, sensorhub.DecoderConfig{}, types...)
	if _, err := hub.Process(t.Context(), []byte(payload)); err != nil {
		return sensorhub.Batch{}, err
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return sensorhub.Batch{Readings: sink.sortedReadings(), Events: slices.Clone(sink.emitted)}, nil
}

var _ sensorhub.Sink = (*Sink)(nil)
