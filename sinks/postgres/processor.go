package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DefaultReorderWindow is Config.ReorderWindow's default: how long, in
// device time, a series' readings are held back so that readings arriving
// out of order still reach processors in device-time order.
const DefaultReorderWindow = 10 * time.Second

// Processor is stateful processing that the sink runs inside its commit
// transaction, after it stored the readings: it sees each (station, sensor)
// series in device-time order, keeps state per series in PostgreSQL, and
// emits events, all committed or rolled back with the readings.
//
// The sink holds a series' readings back until the reorder window
// (Config.ReorderWindow) has passed: a reading is released to Process once
// a reading at least the window later in device time is stored for its
// series, or once no reading of the series arrived for the window of
// wall-clock time (see Sink.Flush). Every reading is released exactly
// once, in device-time order, whatever the arrival order, duplicates,
// redeliveries or replicas sharing the database: as long as each reading
// arrives within the window, the state and events are those of one
// in-order pass. A reading stored after its series was released past it is
// late: it is in Series.Late, never in Series.Readings, and the sink
// announces it with a sensorhub.EventReadingLate event.
//
// A processor that changes stored readings (a value, a quality flag) that
// processors after it may have used already calls Series.Revise: those
// processors are handed the readings again, in Series.Revised, in the same
// transaction. The order of Config.Processors is the order of this chain.
//
// Process is called concurrently for different series, never for one
// series at a time (the series' cursor row is locked). It must not commit
// or roll back tx. An error rolls back the whole transaction; it is retried
// unless marked sensorhub.Permanent.
type Processor interface {
	// Name identifies the processor's cursors and state in the table
	// processor_cursors: a lower-case word such as "threshold". Never
	// rename a processor that has run: a new name starts from no state.
	Name() string
	// Process handles s.Readings in order, reads s.State and sets it to the
	// state to save, and calls s.Emit for the events to publish. It may
	// query and change its own tables through tx.
	Process(ctx context.Context, tx pgx.Tx, s *Series) error
}

// SensorFilter is a Processor that watches only some sensor types: the
// sink keeps no cursor for the series of the others, so they cost nothing
// on a commit. A type that becomes watched starts a cursor with its next
// reading, as a new processor does; readings stored while it was not
// watched are not processed, unless a cursor of an earlier watch is left
// behind them (it resumes there).
type SensorFilter interface {
	Processor
	// Watches returns, for one transaction, whether the series of a
	// sensor type go through Process. It may read through tx, e.g. to
	// refresh settings it caches.
	Watches(ctx context.Context, tx pgx.Tx) (func(sensor string) bool, error)
}

// BatchProcessor is a Processor that handles every series of a
// transaction in one call, e.g. with one set-based query instead of one per
// series: the sink calls ProcessBatch, never Process, with the series that
// have readings for it (released, late or revised), in key order. The
// series and their Emit, Revise and State work as in Process.
type BatchProcessor interface {
	Processor
	ProcessBatch(ctx context.Context, tx pgx.Tx, series []*Series) error
}

// FlagSetter is a Processor that sets the readings' quality flags
// (readings.qc_flag, DESIGN.md §12), such as package qc's: the sink
// releases to it every reading, while the other processors are never
// handed a reading flagged 4 (fail) in Series.Readings. Put it first in
// Config.Processors, so that the others see the flags it sets in the same
// transaction.
type FlagSetter interface {
	Processor
	// SetsQualityFlags marks the processor; it is never called.
	SetsQualityFlags()
}

// Series is one (station, sensor) series handed to Processor.Process.
type Series struct {
	Station, Sensor string
	// Readings are released readings, in device-time order, each handed
	// to the processor once; those flagged 4 (fail) are left out, except
	// for a FlagSetter.
	Readings []sensorhub.Reading
	// Late are readings this transaction stored for the series at or
	// before the point already processed; the sink announces them, and the
	// processor may use them without moving state backwards.
	Late []sensorhub.Reading
	// Revised are readings of the series whose value or quality flag a
	// processor before this one changed in this transaction (see Revise),
	// in device-time order: those at or before the point already
	// processed, and those of the range released now that are not in
	// Readings, for they are flagged 4 (fail). They hold the values as
	// that processor left them; the processor may recompute what it
	// derived from them, such as a value it computed from a stored
	// reading of the series before the reading was released (package
	// derived rates the rain amounts it computes from running totals, which
	// a device's own amount may replace).
	Revised []sensorhub.Reading
	// State is the processor's state of the series as last saved, JSON;
	// nil before the first save. Process sets it to what is saved.
	State json.RawMessage

	events  []sensorhub.Event
	revised []sensorhub.Reading
}

// Emit adds an event to the transaction, after the readings.stored events
// and the handlers' events. Events derived from readings should carry a
// UUID derived from them (see sensorhub.NewReadingEvent), so that replicas
// and retries that derive an event again give it the same UUID.
func (s *Series) Emit(e sensorhub.Event) { s.events = append(s.events, e) }

// Revise reports readings of the series stored before that the processor
// changed in this transaction: the processors after it in the chain that
// watch the series get them in Series.Revised, unless they have not
// processed them yet (then they read the changed values when the readings
// are released, or, for a reading flagged fail, which is not released,
// get it in Series.Revised when the window passes it). Readings of other
// series are ignored.
func (s *Series) Revise(rs ...sensorhub.Reading) {
	for _, r := range rs {
		if r.Station == s.Station && r.Sensor == s.Sensor {
			s.revised = append(s.revised, r)
		}
	}
}

// StepProcessor is a Processor from a function of one reading and a typed
// state, which the sink loads from and saves to JSON: the shortest way to
// write a rule.
//
//	type frost struct{ Below int }
//	p := postgres.StepProcessor[frost]{ID: "frost", Sensors: []string{"temperature"},
//		Step: func(s *frost, r sensorhub.Reading, emit func(sensorhub.Event)) error { ... }}
type StepProcessor[S any] struct {
	// ID is the Processor's Name.
	ID string
	// Sensors are the sensor types it watches; none means every type.
	Sensors []string
	// Step handles one released reading with the series' state, which
	// starts as S's zero value. Readings come in device-time order per
	// series; late and revised readings are not handed to Step.
	Step func(state *S, r sensorhub.Reading, emit func(sensorhub.Event)) error
}

// Name implements Processor.
func (p StepProcessor[S]) Name() string { return p.ID }

// Watches implements SensorFilter.
func (p StepProcessor[S]) Watches(context.Context, pgx.Tx) (func(sensor string) bool, error) {
	return func(sensor string) bool { return len(p.Sensors) == 0 || slices.Contains(p.Sensors, sensor) }, nil
}

// Process implements Processor.
func (p StepProcessor[S]) Process(_ context.Context, _ pgx.Tx, s *Series) error {
	if len(s.Readings) == 0 {
		return nil
	}
	var state S
	if s.State != nil {
		if err := json.Unmarshal(s.State, &state); err != nil {
			return fmt.Errorf("%s: decode state of %s/%s: %w", p.ID, s.Station, s.Sensor, err)
		}
	}
	for _, r := range s.Readings {
		if err := p.Step(&state, r, s.Emit); err != nil {
			return fmt.Errorf("%s: %s/%s at %s: %w", p.ID, r.Station, r.Sensor, r.Time.UTC().Format(time.RFC3339Nano), err)
		}
	}
	raw, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s: encode state of %s/%s: %w", p.ID, s.Station, s.Sensor, err)
	}
	s.State = raw
	return nil
}

var (
	_ Processor    = StepProcessor[struct{}]{}
	_ SensorFilter = StepProcessor[struct{}]{}
)
