package postgres_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// seen is a step processor's state: the values it was handed, in order.
type seen struct{ Values []float64 }

// recorder returns a processor that records every value it is handed in
// its state and emits a "test.seen" event per reading.
func recorder() postgres.StepProcessor[seen] {
	return postgres.StepProcessor[seen]{
		ID: "recorder", Sensors: []string{"temperature"},
		Step: func(s *seen, r sensorhub.Reading, emit func(sensorhub.Event)) error {
			s.Values = append(s.Values, r.Value)
			e, err := sensorhub.NewReadingEvent(r, "test.seen", 1, r.Value)
			emit(e)
			return err
		},
	}
}

func newProcessingSink(t *testing.T, db *postgrestest.DB, window time.Duration, processors ...postgres.Processor) *postgres.Sink {
	t.Helper()
	s, err := postgres.New(postgres.Config{DB: db.Pool, Processors: processors, ReorderWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// temp returns a temperature reading of station roof sec seconds after t0.
func temp(sec int, value float64) sensorhub.Reading {
	return sensorhub.Reading{Station: "roof", Sensor: "temperature", Time: t0.Add(time.Duration(sec) * time.Second), Value: value, Unit: "Cel"}
}

var t0 = time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)

// recorded returns the recorder's state of roof/temperature.
func recorded(t *testing.T, db *postgrestest.DB) []float64 {
	t.Helper()
	var s seen
	err := db.Pool.QueryRow(t.Context(), `SELECT coalesce(state, '{}') FROM processor_cursors
WHERE processor = 'recorder' AND station = 'roof' AND sensor = 'temperature'`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s.Values
}

func eventsOfType(t *testing.T, db *postgrestest.DB, typ string) []sensorhub.Event {
	t.Helper()
	var out []sensorhub.Event
	for _, e := range outboxEvents(t, db) {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func TestProcessorSeesReadingsInDeviceTimeOrderOnceTheWindowPassed(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newProcessingSink(t, db, 10*time.Second, recorder())
	// Out of order within the window, with a duplicate and a sensor type
	// the processor does not watch.
	for _, r := range []sensorhub.Reading{temp(2, 2), temp(0, 0), temp(5, 5), temp(1, 1), temp(2, 2), temp(4, 4), temp(3, 3)} {
		write(t, s, r)
	}
	write(t, s, sensorhub.Reading{Station: "roof", Sensor: "humidity", Time: t0.Add(time.Hour), Value: 50, Unit: "%RH"})
	if got := recorded(t, db); len(got) != 0 {
		t.Fatalf("handed %v before the window passed, want nothing", got)
	}
	write(t, s, temp(13, 13)) // releases up to 3 s
	if got, want := recorded(t, db), []float64{0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("handed %v, want %v", got, want)
	}
	if n := len(eventsOfType(t, db, "test.seen")); n != 4 {
		t.Errorf("%d test.seen events, want 4", n)
	}
	var cursors int
	if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM processor_cursors`).Scan(&cursors); err != nil || cursors != 1 {
		t.Errorf("%d cursors (%v), want one: humidity is not watched", cursors, err)
	}
}

func TestLateReadingIsStoredAnnouncedAndNotProcessed(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newProcessingSink(t, db, 10*time.Second, recorder())
	write(t, s, temp(0, 0))
	write(t, s, temp(30, 30)) // releases up to 20 s
	write(t, s, temp(10, 10)) // late: 10 s <= 20 s
	write(t, s, temp(10, 10)) // its redelivery: a duplicate, not announced again

	if got, want := recorded(t, db), []float64{0}; !slices.Equal(got, want) {
		t.Errorf("handed %v, want %v: the late reading must not be processed", got, want)
	}
	late := eventsOfType(t, db, sensorhub.EventReadingLate)
	if len(late) != 1 {
		t.Fatalf("%d reading.late events, want 1", len(late))
	}
	var p sensorhub.ReadingLate
	if err := late[0].Decode(&p); err != nil {
		t.Fatal(err)
	}
	want := sensorhub.ReadingLate{Processor: "recorder", Station: "roof", Sensor: "temperature",
		Time: t0.Add(10 * time.Second), Value: 10, Unit: "Cel", ProcessedUntil: t0.Add(20 * time.Second)}
	if p != want {
		t.Errorf("reading.late payload %+v, want %+v", p, want)
	}
	var n int
	if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM readings`).Scan(&n); err != nil || n != 3 {
		t.Errorf("%d readings stored (%v), want 3: a late reading is stored", n, err)
	}
}

func TestFlushReleasesOnlyIdleSeries(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newProcessingSink(t, db, 10*time.Second, recorder())
	write(t, s, temp(0, 0))
	write(t, s, temp(1, 1))
	if n, err := s.Flush(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("Flush(idle 1h) = %d, %v; want nothing released from a series that just received readings", n, err)
	}
	if got := recorded(t, db); len(got) != 0 {
		t.Fatalf("handed %v, want nothing yet", got)
	}
	if n, err := s.Flush(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("Flush(idle 0) = %d, %v; want the series released", n, err)
	}
	if got, want := recorded(t, db), []float64{0, 1}; !slices.Equal(got, want) {
		t.Fatalf("handed %v after Flush, want %v", got, want)
	}
	if n, err := s.Flush(t.Context(), 0); err != nil || n != 0 {
		t.Errorf("second Flush = %d, %v; want nothing left", n, err)
	}
	write(t, s, temp(1, 1)) // a duplicate of a processed reading: not late, not processed again
	write(t, s, temp(2, 2)) // after the flush: later than processed, in time
	if late := eventsOfType(t, db, sensorhub.EventReadingLate); len(late) != 0 {
		t.Errorf("%d reading.late events, want none", len(late))
	}
	if _, err := s.Flush(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := recorded(t, db), []float64{0, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("handed %v, want %v", got, want)
	}
}

func TestProcessorEventsNeedEventsOn(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s, err := postgres.New(postgres.Config{DB: db.Pool, DisableEvents: true, Processors: []postgres.Processor{recorder()}, ReorderWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, temp(0, 0))
	_, err = s.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{temp(5, 5)}})
	if sensorhub.ReasonOf(err) != sensorhub.ReasonEventsDisabled {
		t.Fatalf("Write = %v, want a permanent error of reason %s", err, sensorhub.ReasonEventsDisabled)
	}
}

func TestConfigRejectsBadProcessors(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	_, err := postgres.New(postgres.Config{DB: db.Pool, ReorderWindow: -time.Second,
		Processors: []postgres.Processor{recorder(), recorder(), postgres.StepProcessor[seen]{ID: "Bad Name"}, nil}})
	for _, want := range []string{"ReorderWindow", `two processors named "recorder"`, `"Bad Name"`, "Processors[3] is nil"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v, want an error naming %s", err, want)
		}
	}
}
