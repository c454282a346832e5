package sensorhub

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
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
	// EventReadingsStored is the type of the events the Postgres sink
	// writes for a committed transaction that stored new readings, one per
	// MaxReadingsPerEvent of them. Its payload is a ReadingsStored.
	EventReadingsStored = "readings.stored"
	// EventThresholdCrossed is the type of the event the built-in threshold
	// rule (packages threshold and sinks/postgres/alarms) emits.
	EventThresholdCrossed = "threshold.crossed"
	// EventReadingLate is the type of the event the Postgres sink writes
	// when it stores a reading that a stateful processor had already
	// processed its series past: the reading is stored, but the
	// processor's state does not go back for it. Its payload is a
	// ReadingLate.
	EventReadingLate = "reading.late"
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
	// a time-ordered one (UUID version 7). Any form uuid.Parse reads is
	// valid ("urn:uuid:…", braced, upper case, without hyphens); the
	// constructors, Message and ParseEvent turn it into the canonical
	// lower-case 36-character form, which consumers dedupe by.
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
	e := Event{UUID: canonicalUUID(id), Type: typ, Version: version, Time: at.UTC(), Payload: raw}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// canonicalUUID returns id in the canonical form, or unchanged when it is
// no UUID at all, which Validate reports.
func canonicalUUID(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
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
// The UUID goes out in its canonical form.
func (e Event) Message() (*message.Message, error) {
	e.UUID = canonicalUUID(e.UUID)
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("sensorhub: encode event %s: %w", e.UUID, err)
	}
	msg := message.NewMessage(e.UUID, body)
	msg.Metadata.Set(MetadataEventType, e.Type)
	msg.Metadata.Set(MetadataEventVersion, strconv.Itoa(e.Version))
	return msg, nil
}

// ParseEvent reads an event from its wire form (see Event.Message), with
// its UUID in the canonical form. The payload alone decides; the metadata's
// type must agree with it when present.
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
	e.UUID = canonicalUUID(e.UUID)
	return e, nil
}

// ReadingsStored is the payload of an EventReadingsStored event, version 1:
// readings one transaction stored for the first time, ordered by station,
// sensor and time, at most MaxReadingsPerEvent of them. Duplicates and
// conflicts are not listed.
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

// MaxReadingsPerEvent is the most readings one EventReadingsStored event
// lists: a transaction that stores more writes several events, in order,
// each listing the next MaxReadingsPerEvent readings or fewer.
//
// It bounds an event's wire form (Event.Message) so that a consumer with
// the default field bound of 64 KiB (DefaultMaxMessageBytes) reads it: one
// listed reading takes at most 428 bytes of JSON (station and sensor of 64
// bytes, a unit of 32 characters each escaped to six bytes, a time with
// nanoseconds, a float64 of 24 characters), so an event stays under 43 KB,
// and typical readings of some 90 bytes make events of about 9 KB.
const MaxReadingsPerEvent = 100

// readingsStoredSpace is the UUID namespace of EventReadingsStored events.
// Never change it: the UUIDs of events derived again would change with it.
var readingsStoredSpace = uuid.MustParse("306c30d1-3819-412b-88cc-941c242493fd")

// NewReadingsStored returns the EventReadingsStored events for readings,
// the readings a transaction stored for the first time: one per
// MaxReadingsPerEvent of them, none when there are none. An event's UUID is
// derived from all the readings and its position among the events, so a
// commit retried with the same readings writes events with the same UUIDs,
// which consumers dedupe.
func NewReadingsStored(readings []Reading) ([]Event, error) {
	if len(readings) == 0 {
		return nil, nil
	}
	// The digest of every reading's key, value and unit identifies the
	// transaction's readings; the chunk index is appended to it.
	h := sha256.New()
	var buf []byte
	for _, r := range readings {
		buf = append(buf[:0], r.Station...)
		buf = append(append(buf, 0), r.Sensor...)
		buf = binary.BigEndian.AppendUint64(append(buf, 0), uint64(r.Time.UnixMicro()))
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(r.Value))
		buf = append(append(buf, r.Unit...), 0)
		h.Write(buf)
	}
	digest := h.Sum(nil)
	now := time.Now().UTC()
	var events []Event
	for chunk := range slices.Chunk(readings, MaxReadingsPerEvent) {
		payload, err := readingsStoredPayload(chunk)
		if err != nil {
			return nil, fmt.Errorf("sensorhub: encode %s event: %w", EventReadingsStored, err)
		}
		id := uuid.NewSHA1(readingsStoredSpace, binary.BigEndian.AppendUint32(digest, uint32(len(events))))
		events = append(events, Event{UUID: id.String(), Type: EventReadingsStored, Version: ReadingsStoredVersion, Time: now, Payload: payload})
	}
	return events, nil
}

// ReadingLate is the payload of an EventReadingLate event, version 1: a
// reading stored after Processor had processed its series up to
// ProcessedUntil, later than the reorder window allows.
type ReadingLate struct {
	Processor string `json:"processor"`
	Station   string `json:"station"`
	Sensor    string `json:"sensor"`
	// Time is the reading's device time, RFC 3339 in UTC on the wire.
	Time  time.Time `json:"ts"`
	Value float64   `json:"value"`
	Unit  string    `json:"unit"`
	// ProcessedUntil is the device time up to which the processor had
	// processed the series when the reading arrived.
	ProcessedUntil time.Time `json:"processed_until"`
}

// ReadingLateVersion is the schema version of ReadingLate.
const ReadingLateVersion = 1
