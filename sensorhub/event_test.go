package sensorhub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
)

func TestEventWireFormatRoundTrips(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 12, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	e, err := sensorhub.NewEventAt("0193a1b2-0000-7000-8000-000000000001", "frost.warning", 2, at, map[string]any{"station": "roof"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	if msg.UUID != e.UUID || msg.Metadata.Get(sensorhub.MetadataEventType) != "frost.warning" || msg.Metadata.Get(sensorhub.MetadataEventVersion) != "2" {
		t.Errorf("message %s %v does not carry the event's UUID, type and version", msg.UUID, msg.Metadata)
	}
	want := `{"uuid":"0193a1b2-0000-7000-8000-000000000001","type":"frost.warning","version":2,"time":"2024-12-01T12:00:00Z","payload":{"station":"roof"}}`
	if string(msg.Payload) != want {
		t.Errorf("payload\n%s\nwant\n%s", msg.Payload, want)
	}
	back, err := sensorhub.ParseEvent(msg)
	if err != nil {
		t.Fatal(err)
	}
	if back.UUID != e.UUID || back.Type != e.Type || back.Version != 2 || !back.Time.Equal(at) || string(back.Payload) != `{"station":"roof"}` {
		t.Errorf("parsed %+v, want %+v", back, e)
	}
	msg.Metadata.Set(sensorhub.MetadataEventType, "other.type")
	if _, err := sensorhub.ParseEvent(msg); err == nil {
		t.Error("metadata type that contradicts the payload accepted")
	}
}

// TestEventUUIDFormsBecomeCanonical: the forms of a UUID that uuid.Parse
// reads are valid, and each way onto or off the wire turns them into the
// one form consumers dedupe by.
func TestEventUUIDFormsBecomeCanonical(t *testing.T) {
	t.Parallel()
	const canonical = "0193a1b2-0000-7000-8000-00000000000a"
	for _, form := range []string{
		canonical,
		"urn:uuid:" + canonical,
		"{" + canonical + "}",
		strings.ToUpper(canonical),
		strings.ReplaceAll(canonical, "-", ""),
	} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			at := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
			raw := sensorhub.Event{UUID: form, Type: "x.y", Version: 1, Time: at, Payload: []byte("1")}
			if err := raw.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			built, err := sensorhub.NewEventAt(form, "x.y", 1, at, 1)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := raw.Message()
			if err != nil {
				t.Fatal(err)
			}
			fromWire, err := sensorhub.ParseEvent(message.NewMessage(form, []byte(`{"uuid":"`+form+`","type":"x.y","version":1,"time":"2024-12-01T12:00:00Z","payload":1}`)))
			if err != nil {
				t.Fatal(err)
			}
			if built.UUID != canonical || msg.UUID != canonical || !strings.Contains(string(msg.Payload), `"uuid":"`+canonical+`"`) || fromWire.UUID != canonical {
				t.Errorf("NewEventAt %q, Message %q %s, ParseEvent %q; want %q everywhere", built.UUID, msg.UUID, msg.Payload, fromWire.UUID, canonical)
			}
		})
	}
}

func TestEventValidateNamesEveryProblem(t *testing.T) {
	t.Parallel()
	err := sensorhub.Event{UUID: "nope", Type: "Bad Type", Payload: []byte("{")}.Validate()
	for _, want := range []string{"uuid", "type", "version", "time", "payload"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if _, err := sensorhub.NewEvent("x.y", 1, func() {}); err == nil {
		t.Error("a payload that cannot be JSON accepted")
	}
}

// alarmType stores temperatures and emits a user-defined event for hot ones.
func alarmType(t *testing.T) sensorhub.SensorType {
	return sensorhub.SensorType{Name: "temperature", Unit: "Cel", Min: -90, Max: 70,
		Handle: func(_ context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
			out := sensorhub.Batch{Readings: []sensorhub.Reading{r}}
			if r.Value > 30 {
				e, err := sensorhub.NewEvent("test.hot", 1, map[string]float64{"value": r.Value})
				if err != nil {
					t.Error(err)
				}
				out.Events = append(out.Events, e)
			}
			return out, nil
		}}
}

func TestHandlerEventsCommitWithTheReadings(t *testing.T) {
	t.Parallel()
	sink := &sensorhubtest.Sink{}
	hub := sensorhubtest.NewHub(t, sink, sensorhub.DecoderConfig{}, alarmType(t))
	payload := `[{"sensor":"temperature","value":35,"timestamp":"2024-12-01T12:00:00Z","station":"roof"},
		{"sensor":"temperature","value":20,"timestamp":"2024-12-01T12:01:00Z","station":"roof"}]`
	if _, err := hub.Process(t.Context(), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	events := sink.Events()
	if len(events) != 2 || events[0].Type != sensorhub.EventReadingsStored || events[1].Type != "test.hot" {
		t.Fatalf("events %+v, want readings.stored then test.hot", events)
	}
	var stored sensorhub.ReadingsStored
	if err := events[0].Decode(&stored); err != nil || len(stored.Readings) != 2 || stored.Readings[0].Value != 35 {
		t.Errorf("readings.stored payload %s, %v", events[0].Payload, err)
	}

	// Sent again: nothing new stored, so no readings.stored; the handler's
	// event comes again (this handler does not derive its UUIDs).
	if _, err := hub.Process(t.Context(), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if events := sink.Events(); len(events) != 3 || events[2].Type != "test.hot" {
		t.Errorf("after a repeat: events %+v, want one more test.hot only", events)
	}
}

func TestHandlerEventsRollBackWithTheReadings(t *testing.T) {
	t.Parallel()
	hub := sensorhubtest.NewHub(t, failingSink{err: errors.New("connection refused")}, sensorhub.DecoderConfig{}, alarmType(t))
	_, err := hub.Process(t.Context(), []byte(`{"sensor":"temperature","value":35,"timestamp":"2024-12-01T12:00:00Z"}`))
	if err == nil || sensorhub.IsPermanent(err) {
		t.Fatalf("err = %v, want the sink's transient error", err)
	}
}

func TestInvalidHandlerEventPoisons(t *testing.T) {
	t.Parallel()
	typ := sensorhub.SensorType{Name: "temperature", Unit: "Cel",
		Handle: func(_ context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
			return sensorhub.Batch{Readings: []sensorhub.Reading{r}, Events: []sensorhub.Event{{Type: "no uuid"}}}, nil
		}}
	_, err := sensorhubtest.Process(t, `{"sensor":"temperature","value":1,"timestamp":"2024-12-01T12:00:00Z"}`, typ)
	if sensorhub.ReasonOf(err) != sensorhub.ReasonInvalidEvent {
		t.Fatalf("err = %v, want reason %s", err, sensorhub.ReasonInvalidEvent)
	}
}

// TestNewReadingsStoredChunksLargeTransactions: a transaction's readings
// are listed in order across events of at most MaxReadingsPerEvent, whose
// UUIDs are the same when the same readings are committed again.
func TestNewReadingsStoredChunksLargeTransactions(t *testing.T) {
	t.Parallel()
	n := 2*sensorhub.MaxReadingsPerEvent + sensorhub.MaxReadingsPerEvent/2
	base := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	readings := make([]sensorhub.Reading, n)
	for i := range readings {
		readings[i] = sensorhub.Reading{Station: "roof", Sensor: "temperature", Time: base.Add(time.Duration(i) * time.Second), Value: float64(i), Unit: "Cel"}
	}
	events, err := sensorhub.NewReadingsStored(readings)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("%d events for %d readings, want 3", len(events), n)
	}
	var listed []float64
	uuids := make(map[string]bool)
	for _, e := range events {
		if err := e.Validate(); err != nil {
			t.Fatal(err)
		}
		var p sensorhub.ReadingsStored
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if len(p.Readings) > sensorhub.MaxReadingsPerEvent {
			t.Errorf("event %s lists %d readings, more than %d", e.UUID, len(p.Readings), sensorhub.MaxReadingsPerEvent)
		}
		for _, r := range p.Readings {
			listed = append(listed, r.Value)
		}
		uuids[e.UUID] = true
	}
	for i, v := range listed {
		if v != float64(i) {
			t.Fatalf("reading %d listed as %v: readings lost, repeated or out of order", i, v)
		}
	}
	if len(listed) != n || len(uuids) != len(events) {
		t.Errorf("%d readings listed, %d distinct UUIDs; want %d and %d", len(listed), len(uuids), n, len(events))
	}

	again, err := sensorhub.NewReadingsStored(readings)
	if err != nil {
		t.Fatal(err)
	}
	for i := range events {
		if again[i].UUID != events[i].UUID {
			t.Errorf("event %d: UUID %s, then %s for the same readings", i, events[i].UUID, again[i].UUID)
		}
	}
	readings[0].Value = -1
	other, err := sensorhub.NewReadingsStored(readings)
	if err != nil {
		t.Fatal(err)
	}
	for i := range events {
		if other[i].UUID == events[i].UUID {
			t.Errorf("event %d: UUID %s also for other readings", i, events[i].UUID)
		}
	}
	if none, err := sensorhub.NewReadingsStored(nil); none != nil || err != nil {
		t.Errorf("no readings gave %v, %v; want no events", none, err)
	}
}

// TestReadingsStoredEventFitsTheFieldBound: an event of MaxReadingsPerEvent
// readings with the longest names the contract allows, a unit that escapes
// to the most bytes and the longest time and value fits the 64 KiB a
// consumer's subscriber reads by default, within the bound documented on
// MaxReadingsPerEvent.
func TestReadingsStoredEventFitsTheFieldBound(t *testing.T) {
	t.Parallel()
	readings := make([]sensorhub.Reading, sensorhub.MaxReadingsPerEvent)
	for i := range readings {
		readings[i] = sensorhub.Reading{
			Station: strings.Repeat("S", 64), Sensor: strings.Repeat("s", 64), Unit: strings.Repeat("<", 32),
			Time:  time.Date(2024, 12, 1, 12, 0, 0, 123456789, time.UTC).Add(time.Duration(i) * time.Second),
			Value: -1.2345678901234567e-308,
		}
	}
	events, err := sensorhub.NewReadingsStored(readings)
	if err != nil || len(events) != 1 {
		t.Fatalf("got %d events, %v; want one", len(events), err)
	}
	msg, err := events[0].Message()
	if err != nil {
		t.Fatal(err)
	}
	const documented = 43_000
	if len(msg.Payload) > documented || len(msg.Payload) > sensorhub.DefaultMaxMessageBytes {
		t.Errorf("worst-case event is %d bytes, documented bound %d, field bound %d", len(msg.Payload), documented, sensorhub.DefaultMaxMessageBytes)
	}
	t.Logf("worst-case event of %d readings: %d bytes", len(readings), len(msg.Payload))
}

// TestReadingEventIsStableAcrossRedeliveries checks that handling one
// reading twice, as after a redelivery or a re-send, gives one event UUID,
// and that another reading or type gives another.
func TestReadingEventIsStableAcrossRedeliveries(t *testing.T) {
	t.Parallel()
	wet := sensorhub.SensorType{Name: "leaf_wetness", Unit: "%", Min: 0, Max: 100,
		Handle: func(_ context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
			e, err := sensorhub.NewReadingEvent(r, "leaf.wet", 1, map[string]any{"station": r.Station, "value": r.Value})
			return sensorhub.Batch{Readings: []sensorhub.Reading{r}, Events: []sensorhub.Event{e}}, err
		}}
	const msg = `{"sensor":"leaf_wetness","value":80,"timestamp":"2024-12-01T12:00:00.123456Z","station":"vineyard"}`
	first, err := sensorhubtest.Process(t, msg, wet)
	if err != nil {
		t.Fatal(err)
	}
	again, err := sensorhubtest.Process(t, msg, wet)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Events) != 1 || len(again.Events) != 1 {
		t.Fatalf("events %+v and %+v, want one each", first.Events, again.Events)
	}
	e := first.Events[0]
	if again.Events[0].UUID != e.UUID || !again.Events[0].Time.Equal(e.Time) {
		t.Errorf("the same reading gave events %s at %s and %s at %s", e.UUID, e.Time, again.Events[0].UUID, again.Events[0].Time)
	}
	if want := time.Date(2024, 12, 1, 12, 0, 0, 123456000, time.UTC); !e.Time.Equal(want) {
		t.Errorf("event time %s, want the device time %s", e.Time, want)
	}
	r := first.Readings[0]
	other := r
	other.Station = "orchard"
	for name, id := range map[string]func() (sensorhub.Event, error){
		"another station": func() (sensorhub.Event, error) { return sensorhub.NewReadingEvent(other, "leaf.wet", 1, nil) },
		"another type":    func() (sensorhub.Event, error) { return sensorhub.NewReadingEvent(r, "leaf.dry", 1, nil) },
	} {
		got, err := id()
		if err != nil {
			t.Fatal(err)
		}
		if got.UUID == e.UUID {
			t.Errorf("%s gave the same UUID %s", name, got.UUID)
		}
	}
}

// BenchmarkNewReadingsStored measures the events of a 1,000-reading
// commit, as the sink builds them.
func BenchmarkNewReadingsStored(b *testing.B) {
	base := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	readings := make([]sensorhub.Reading, 1000)
	for i := range readings {
		readings[i] = sensorhub.Reading{Station: "station-" + string(rune('0'+i%5)), Sensor: "temperature",
			Time: base.Add(time.Duration(i/5) * time.Second), Value: 14.5 + float64(i%3)/10, Unit: "Cel"}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sensorhub.NewReadingsStored(readings); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventMessage measures the wire form of a readings.stored event
// of MaxReadingsPerEvent readings, which the outbox stores.
func BenchmarkEventMessage(b *testing.B) {
	base := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	readings := make([]sensorhub.Reading, sensorhub.MaxReadingsPerEvent)
	for i := range readings {
		readings[i] = sensorhub.Reading{Station: "roof", Sensor: "temperature", Time: base.Add(time.Duration(i) * time.Second), Value: 14.5, Unit: "Cel"}
	}
	events, err := sensorhub.NewReadingsStored(readings)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events[0].Message(); err != nil {
			b.Fatal(err)
		}
	}
}
