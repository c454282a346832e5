package sensorhub

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// Wire names of the events stream. Part of the contract with downstream
// consumers (DESIGN.md §5): do not rename them.
const (
	// DefaultEventsStream is the Redis stream events are forwarded to.
	DefaultEventsStream = "sensor_events"
	// EventReadingsStored is the type of the event the Postgres sink writes
	// once per committed transaction that stored new readings. Its payload
	// is a ReadingsStored.
	EventReadingsStored = "readings.stored"
	// EventThresholdCrossed is the type of the event the built-in threshold
	// rule (package rules/threshold) emits.
	EventThresholdCrossed = "threshold.crossed"
)

// Metadata keys of an event's message. Part of the wire contract.
const (
	// MetadataEventType holds Event.Type.
	MetadataEventType = "type"
	// MetadataEventVersion holds Event.Version in decimal.
	MetadataEventVersion = "version"
)

// eventTypePattern is the rule for event type names: lower-case words
// joined by dots, such as "readings.stored".
var eventTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// Event is something that happened, told to downstream consumers. A handler
// returns events in Batch.Events; the sink stores them in the same
// transaction as the readings, so an event exists if and only if what it
// describes was committed. A user-defined event needs only a type name and
// a payload that encodes to JSON: the framework never looks inside.
//
// Delivery is at least once: a consumer may see one event more than once,
// always with the same UUID, and dedupes by it.
type Event struct {
	// UUID identifies the event; stable across redeliveries. NewEvent sets
	// a time-ordered one (UUID version 7).
	UUID string `json:"uuid"`
	// Type names the kind of event, lower-case words joined by dots, such
	// as EventReadingsStored. It is a wire contract: never rename one.
	Type string `json:"type"`
	// Version is the schema version of Payload, from 1; raise it when a
	// change would break existing consumers.
	Version int `json:"version"`
	// Time is when the event happened, in UTC.
	Time time.Time `json:"time"`
	// Payload is the event's body, a JSON value. Times in it are RFC 3339
	// in UTC.
	Payload json.RawMessage `json:"payload"`
}

// NewEvent returns an event of type typ and schema version with payload
// encoded as JSON, a new time-ordered UUID, and the current time.
func NewEvent(typ string, version int, payload any) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("sensorhub: new event %s: %w", typ, err)
	}
	return NewEventAt(id.String(), typ, version, time.Now(), payload)
}

// NewEventAt returns an event with the given UUID and time, for events that
// must come out the same every time they are derived from the same input,
// so that consumers can dedupe repeats (see uuid.NewSHA1 for a UUID made
// from a name). The time is converted to UTC.
func NewEventAt(id, typ string, version int, at time.Time, payload any) (Event, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("sensorhub: encode %s event: %w", typ, err)
	}
	e := Event{UUID: id, Type: typ, Version: version, Time: at.UTC(), Payload: raw}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// NewReadingEvent returns an event of type typ about reading r whose UUID
// and time are derived from r, so that handling the same reading again (a
// redelivery, a producer's re-send) gives the same event and consumers
// dedupe it. The UUID is a name-based one (UUID version 5) of the reading's
// natural key (station, sensor, device time to the microsecond, as stored)
// and typ; the event's time is the reading's device time. A handler that
// emits two events of one type for one reading tells them apart with
// NewEventAt and a UUID of its own making.
func NewReadingEvent(r Reading, typ string, version int, payload any) (Event, error) {
	return NewEventAt(readingEventUUID(r, typ), typ, version, r.Time, payload)
}

// readingEventUUID returns the UUID NewReadingEvent gives the event of type
// typ about reading r.
func readingEventUUID(r Reading, typ string) string {
	name := r.Station + "\x00" + r.Sensor + "\x00" + strconv.FormatInt(r.Time.UnixMicro(), 10) + "\x00" + typ
	return uuid.NewSHA1(readingEventSpace, []byte(name)).String()
}

// readingEventSpace is the UUID namespace of NewReadingEvent. It must never
// change: consumers dedupe events across releases by their UUIDs.
var readingEventSpace = uuid.MustParse("8c1d7f2e-3b0a-5e4c-9a6f-2d4b1e0c7a93")

// Validate reports every problem with the event at once.
func (e Event) Validate() error {
	var errs []error
	if _, err := uuid.Parse(e.UUID); err != nil {
		errs = append(errs, fmt.Errorf("uuid %q: %w", e.UUID, err))
	}
	if !eventTypePattern.MatchString(e.Type) || len(e.Type) > 128 {
		errs = append(errs, fmt.Errorf("type %q does not match %s (at most 128 bytes)", e.Type, eventTypePattern))
	}
	if e.Version < 1 {
		errs = append(errs, fmt.Errorf("version %d: must be 1 or more", e.Version))
	}
	if e.Time.IsZero() {
		errs = append(errs, errors.New("time is zero"))
	}
	if !json.Valid(e.Payload) {
		errs = append(errs, errors.New("payload is not valid JSON"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sensorhub: invalid event: %w", err)
	}
	return nil
}

// Decode decodes the payload into v, typically a pointer to the payload
// type that goes with e.Type.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("sensorhub: decode %s event %s: %w", e.Type, e.UUID, err)
	}
	return nil
}

// Message returns the event as a Watermill message, its wire form: the
// message UUID is the event's, the payload is the whole event as JSON (so
// a consumer reading the stream by hand sees everything in one field), and
// the metadata repeats the type and version for routing without decoding.
func (e Event) Message() (*message.Message, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("sensorhub: encode event %s: %w", e.UUID, err)
	}
	msg := message.NewMessage(e.UUID, body)
	msg.Metadata.Set(MetadataEventType, e.Type)
	msg.Metadata.Set(MetadataEventVersion, strconv.Itoa(e.Version))
	return msg, nil
}

// ParseEvent reads an event from its wire form (see Event.Message). The
// payload alone decides; the message UUID and metadata must agree with it
// when present.
func ParseEvent(msg *message.Message) (Event, error) {
	var e Event
	if err := json.Unmarshal(msg.Payload, &e); err != nil {
		return Event{}, fmt.Errorf("sensorhub: parse event %s: %w", msg.UUID, err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("sensorhub: parse event %s: %w", msg.UUID, err)
	}
	if t := msg.Metadata.Get(MetadataEventType); t != "" && t != e.Type {
		return Event{}, fmt.Errorf("sensorhub: parse event %s: metadata type %q differs from payload type %q", e.UUID, t, e.Type)
	}
	return e, nil
}

// ReadingsStored is the payload of an EventReadingsStored event, version 1:
// the readings one transaction stored for the first time, ordered by
// station, sensor and time. Duplicates and conflicts are not listed.
type ReadingsStored struct {
	Readings []StoredReading `json:"readings"`
}

// StoredReading is one reading of a ReadingsStored event.
type StoredReading struct {
	Station string `json:"station"`
	Sensor  string `json:"sensor"`
	// Time is the device time, RFC 3339 in UTC on the wire.
	Time  time.Time `json:"ts"`
	Value float64   `json:"value"`
	Unit  string    `json:"unit"`
}

// ReadingsStoredVersion is the schema version of ReadingsStored.
const ReadingsStoredVersion = 1

// NewReadingsStored returns the EventReadingsStored event for readings, or
// false when there are none: no event is written for a transaction that
// stored nothing new.
func NewReadingsStored(readings []Reading) (Event, bool, error) {
	if len(readings) == 0 {
		return Event{}, false, nil
	}
	p := ReadingsStored{Readings: make([]StoredReading, len(readings))}
	for i, r := range readings {
		p.Readings[i] = StoredReading{Station: r.Station, Sensor: r.Sensor, Time: r.Time.UTC(), Value: r.Value, Unit: r.Unit}
	}
	e, err := NewEvent(EventReadingsStored, ReadingsStoredVersion, p)
	return e, err == nil, err
}
