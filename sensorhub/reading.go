package sensorhub

import (
	"context"
	"time"
)

// Reading is one validated measurement. Value is in Unit, the canonical unit
// of the sensor type; Time is the device time (never the arrival time).
// Station, Sensor and Time form the natural key under which a reading is
// stored at most once.
type Reading struct {
	// Station identifies the source, e.g. "roof".
	Station string
	// Sensor is the sensor type, e.g. "temperature".
	Sensor string
	// Time is the device time of the measurement.
	Time time.Time
	// Value is the measured value in Unit.
	Value float64
	// Unit is a SenML unit code (RFC 8428), e.g. "Cel".
	Unit string
	// ID is the producer's optional idempotency key, kept for tracing.
	ID string
}

// WriteResult counts what a Sink did with a batch of readings.
type WriteResult struct {
	// Stored counts readings written for the first time.
	Stored int
	// Replaced counts the readings among Stored that took the place of a
	// value sensorhub had computed under the same key (a derived reading,
	// DESIGN.md §13): what a device sends wins over what is computed.
	Replaced int
	// Duplicates counts readings already stored with the same value.
	Duplicates int
	// Conflicts counts readings whose natural key was already stored with
	// another value; the first write wins.
	Conflicts int
}

// Batch is readings to store and the events to publish with them: what a
// HandleFunc returns for one reading, and what the hub writes to the Sink
// for one message. Readings and events commit or roll back together.
type Batch struct {
	// Readings are stored under their natural key.
	Readings []Reading
	// Events are published once the transaction holding them commits.
	Events []Event
}

// Empty reports whether b holds nothing to write.
func (b Batch) Empty() bool { return len(b.Readings) == 0 && len(b.Events) == 0 }

// Sink stores readings and the events that go with them. Write stores a
// batch atomically: either every reading of it is committed (stored or
// recognised as a duplicate or conflict) together with its events and the
// returned error is nil, or nothing is. Errors marked with Permanent send
// the message to the poison queue; all others are retried. Write is called
// concurrently.
//
// A sink that cannot publish events may ignore them; the Postgres sink
// stores them in its outbox.
type Sink interface {
	Write(ctx context.Context, batch Batch) (WriteResult, error)
}
