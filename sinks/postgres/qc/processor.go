// Package qc is sensorhub's quality control (DESIGN.md §12), a processor
// of the Postgres sink (postgres.Processor) built like any user's: it
// flags stored readings with QARTOD codes in readings.qc_flag (1 pass, 2
// not evaluated, 3 suspect, 4 fail) and names the tests that flagged them
// in readings.qc_tests, in the transaction that stores them.
//
//	p, err := qc.New(qc.Config{Types: handlers.Builtin()})
//	...
//	sink, err := postgres.New(postgres.Config{DB: pool, Processors: []postgres.Processor{p, alarms.New(alarms.Config{})}})
//
// The tests are the sensor types' declarations (sensorhub.QC), overridden
// per station in the table qc_settings (Set, ListSettings), and periods
// flagged by hand in qc_manual_flags (Processor.Flag). A reading's flags
// are a pure function of the stored series around it in device time (its
// neighbours, the run of equal values before it), of the settings and of
// the manual flags: a reading arriving late is evaluated against its true
// neighbours and theirs are evaluated again, so the final flags do not
// depend on arrival order, and Processor.Rebuild, which evaluates stored
// readings from scratch, gives the same flags. Each change of flags is
// announced with an EventFlagged event in the same transaction, except a
// reading's first evaluation as pass. docs/quality.md tells the defaults.
package qc

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
)

// Name is the processor's name, under which its state is stored. Do not
// rename it.
const Name = "qc"

// DefaultRefresh is Config.Refresh's default.
const DefaultRefresh = 2 * time.Second

// Config configures a Processor.
type Config struct {
	// Types are the registered sensor types, whose QC fields declare the
	// tests (the hub's types, e.g. handlers.Builtin() and a user's own). A
	// type not among them is evaluated only with settings or manual flags
	// for it, or by the CatchAll type's declaration.
	Types []sensorhub.SensorType
	// Refresh is how long the settings, the stations' latitudes and the
	// list of manually flagged sensor types are used before they are read
	// again, within some commit transaction. Manual flags themselves are
	// read with the readings, never cached. Default DefaultRefresh (2 s).
	Refresh time.Duration
	// DisableEvents writes no EventFlagged events from Flag and Rebuild,
	// for a deployment without the outbox. The sink's own setting governs
	// the processor's events. Default false.
	DisableEvents bool
	// Followers recompute what they computed from stored readings whose
	// flags Flag, Rebuild or Follow changed to or from fail, in the same
	// transaction (package derived's Processor is one; see Follower). The
	// sink does not use them. Default none.
	Followers []Follower
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	for _, t := range c.Types {
		if err := t.QC.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("qc: sensor type %q: %w", t.Name, err))
		}
	}
	if c.Refresh < 0 {
		errs = append(errs, fmt.Errorf("qc: Config.Refresh %s is negative", c.Refresh))
	}
	return errors.Join(errs...)
}

// Processor is quality control as a postgres.Processor. It is safe for
// concurrent use. Put it first among the sink's processors: the others
// (threshold rules, derived quantities) then never see a reading it
// flagged fail.
type Processor struct {
	declared map[string]sensorhub.QC
	// companionOf lists, per sensor type, the types whose flat-line test
	// names it as companion.
	companionOf map[string][]string
	refresh     time.Duration
	events      bool
	followers   []Follower

	mu   sync.Mutex
	snap *snapshot
}

// New returns a Processor, or the error of cfg.Validate.
func New(cfg Config) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	declared := make(map[string]sensorhub.QC, len(cfg.Types))
	companionOf := map[string][]string{}
	for _, t := range cfg.Types {
		declared[t.Name] = t.QC
		if c := t.QC.FlatLine.Companion; c != "" {
			companionOf[c] = append(companionOf[c], t.Name)
		}
	}
	return &Processor{declared: declared, companionOf: companionOf, refresh: cmp.Or(cfg.Refresh, DefaultRefresh), events: !cfg.DisableEvents,
		followers: cfg.Followers}, nil
}

// Name implements postgres.Processor.
func (p *Processor) Name() string { return Name }

// SetsQualityFlags implements postgres.FlagSetter: the sink releases
// readings flagged fail to this processor too.
func (p *Processor) SetsQualityFlags() {}

// Watches implements postgres.SensorFilter: the types with a test declared
// or set, a period flagged by hand, or a type whose flat line they are
// the companion of.
func (p *Processor) Watches(ctx context.Context, tx pgx.Tx) (func(sensor string) bool, error) {
	snap, err := p.load(ctx, tx)
	if err != nil {
		return nil, err
	}
	return func(sensor string) bool { return snap.watches(p.declared, sensor) || p.companionOf[sensor] != nil }, nil
}

// Process implements postgres.Processor for one series; the sink calls
// ProcessBatch instead.
func (p *Processor) Process(ctx context.Context, tx pgx.Tx, s *postgres.Series) error {
	return p.ProcessBatch(ctx, tx, []*postgres.Series{s})
}

// ProcessBatch implements postgres.BatchProcessor: it evaluates the
// released readings, the late ones, and the stored readings whose flags
// depend on them, stores the flags that changed, announces each change,
// and hands the readings that became or stopped being fail to the
// processors after it (Series.Revise). Series without late readings read
// with two queries for all of them (walkBatched) and write with one; a
// series with late readings, or whose context reaches back further than
// a first page, reads its own stretch.
func (p *Processor) ProcessBatch(ctx context.Context, tx pgx.Tx, series []*postgres.Series) error {
	snap, err := p.load(ctx, tx)
	if err != nil {
		return err
	}
	walks := make([]*walk, len(series))
	states := make([]*state, len(series))
	var (
		fast  []int // indexes of the series on the fast path
		first []int // indexes of the series released for the first time
	)
	for i, s := range series {
		if s.State != nil {
			if err := json.Unmarshal(s.State, &states[i]); err != nil {
				return fmt.Errorf("qc: decode state of %s/%s: %w", s.Station, s.Sensor, err)
			}
		}
		var through time.Time // the released point after this transaction
		switch {
		case len(s.Readings) > 0:
			through = s.Readings[len(s.Readings)-1].Time
		case states[i] != nil:
			through = states[i].Run.Last
		}
		walks[i] = newWalk(ctx, tx, s.Station, s.Sensor, snap.limits(p.declared, s.Station, s.Sensor), through)
		if !snap.watches(p.declared, s.Sensor) {
			continue // only the companion of a watched type: its readings keep flag 2
		}
		switch {
		case len(s.Late) > 0 || len(s.Readings) == 0:
		case states[i] != nil:
			fast = append(fast, i)
		default:
			first = append(first, i)
		}
	}
	done := make([]bool, len(series))
	if err := walkBatched(ctx, tx, series, walks, states, fast, first, done); err != nil {
		return err
	}
	for i, s := range series {
		if done[i] || len(s.Readings)+len(s.Late) == 0 || !snap.watches(p.declared, s.Sensor) {
			continue
		}
		lo, hi := span(s.Readings, s.Late)
		if err := walks[i].general(ctx, lo, hi); err != nil {
			return err
		}
	}
	if err := save(ctx, tx, walks); err != nil {
		return err
	}
	cross, err := p.crossWalks(ctx, tx, snap, series)
	if err != nil {
		return err
	}
	return publish(series, walks, cross)
}

// walkBatched evaluates, with two queries for all of them, the series of
// fast, whose saved state stands in for the readings before their release,
// and those of first, released for the first time, whose context before
// the release is the first page that general would read; it marks done
// those it evaluated. A series whose context reaches further back, or
// whose saved state no longer matches the table, is left to general.
func walkBatched(ctx context.Context, tx pgx.Tx, series []*postgres.Series, walks []*walk, states []*state, fast, first []int, done []bool) error {
	var before [][]stored
	if len(first) > 0 {
		firstWalks, los := make([]*walk, len(first)), make([]time.Time, len(first))
		for j, i := range first {
			firstWalks[j], los[j] = walks[i], series[i].Readings[0].Time
		}
		var err error
		if before, err = contexts(ctx, tx, firstWalks, los); err != nil {
			return err
		}
	}
	var (
		batched   []int
		contextOf = map[int][]stored{} // by series index, in device-time order
		los, his  []time.Time
	)
	for _, i := range fast {
		batched, los = append(batched, i), append(los, states[i].Run.Last)
	}
	for j, i := range first {
		out, complete := walks[i].extendContext(nil, before[j], firstContextPage)
		if !complete {
			continue
		}
		slices.Reverse(out)
		contextOf[i] = out
		batched, los = append(batched, i), append(los, series[i].Readings[0].Time)
	}
	if len(batched) == 0 {
		return nil
	}
	batchedWalks := make([]*walk, len(batched))
	for j, i := range batched {
		batchedWalks[j] = walks[i]
		his = append(his, walks[i].through)
	}
	rows, err := stretches(ctx, tx, batchedWalks, los, his)
	if err != nil {
		return err
	}
	for j, i := range batched {
		if states[i] != nil {
			done[i] = walks[i].fast(*states[i], series[i].Readings, rows[j])
		} else {
			walks[i].first(los[j], his[j], contextOf[i], rows[j])
			done[i] = true
		}
		if walks[i].err != nil {
			return walks[i].err
		}
	}
	return nil
}

// publish hands each series the events, revisions and state of its walk,
// then those of the walks of series that depend on a companion.
func publish(series []*postgres.Series, walks []*walk, cross []crossWalk) error {
	for i, s := range series {
		k := walks[i]
		events, err := k.events()
		if err != nil {
			return err
		}
		for _, e := range events {
			s.Emit(e)
		}
		s.Revise(k.failChanged()...)
		if k.captured != nil {
			if s.State, err = json.Marshal(k.captured); err != nil {
				return fmt.Errorf("qc: encode state of %s/%s: %w", s.Station, s.Sensor, err)
			}
		}
	}
	for _, c := range cross {
		events, err := c.k.events()
		if err != nil {
			return err
		}
		// The series' own events, when it is in the batch, so that they
		// follow the ones its own walk emitted; else the companion's.
		on := series[c.companion]
		for _, s := range series {
			if s.Station == c.k.station && s.Sensor == c.k.sensor {
				on = s
				s.Revise(c.k.failChanged()...)
			}
		}
		for _, e := range events {
			on.Emit(e)
		}
	}
	return nil
}

// crossWalk is the evaluation of a series whose flat lines at zero depend
// on the companion series of the batch at index companion.
type crossWalk struct {
	k         *walk
	companion int
}

// crossWalks evaluates again, after the batch's own flags are stored, the
// readings whose flat lines at zero a companion's new readings above zero
// may change (a gust arriving after the calm wind speed was evaluated),
// and stores the changes.
func (p *Processor) crossWalks(ctx context.Context, tx pgx.Tx, snap *snapshot, series []*postgres.Series) ([]crossWalk, error) {
	if len(p.companionOf) == 0 {
		return nil, nil
	}
	in := make([]seriesReadings, len(series))
	for i, s := range series {
		in[i] = seriesReadings{station: s.Station, sensor: s.Sensor, all: append(slices.Clone(s.Readings), s.Late...)}
	}
	deps, err := p.dependents(ctx, tx, snap, in)
	if err != nil || len(deps) == 0 {
		return nil, err
	}
	out := make([]crossWalk, len(deps))
	walks := make([]*walk, len(deps))
	for i, d := range deps {
		walks[i] = newWalk(ctx, tx, d.station, d.sensor, d.l, time.Time{})
		if err := walks[i].general(ctx, d.lo, d.hi); err != nil {
			return nil, err
		}
		out[i] = crossWalk{k: walks[i], companion: d.companion}
	}
	return out, save(ctx, tx, walks)
}

// span returns the first and last device time of the readings of both
// lists, each in device-time order and not both empty.
func span(a, b []sensorhub.Reading) (lo, hi time.Time) {
	for _, rs := range [][]sensorhub.Reading{a, b} {
		if len(rs) == 0 {
			continue
		}
		if first := rs[0].Time; lo.IsZero() || first.Before(lo) {
			lo = first
		}
		if last := rs[len(rs)-1].Time; last.After(hi) {
			hi = last
		}
	}
	return lo, hi
}

// load returns the snapshot, read within db when older than Refresh.
func (p *Processor) load(ctx context.Context, db DB) (*snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.snap != nil && time.Since(p.snap.loadedAt) < p.refresh {
		return p.snap, nil
	}
	snap, err := loadSnapshot(ctx, db)
	if err != nil {
		return nil, err
	}
	p.snap = snap
	return snap, nil
}

var (
	_ postgres.SensorFilter   = (*Processor)(nil)
	_ postgres.BatchProcessor = (*Processor)(nil)
	_ postgres.FlagSetter     = (*Processor)(nil)
)
