package derived

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

// Name is the processor's name, under which the sink keeps its cursors.
// Do not rename it.
const Name = "derived"

// Defaults of Config.
const (
	// DefaultTolerance is Config.Tolerance's default: how far apart in
	// device time two readings may be and still pair.
	DefaultTolerance = 60 * time.Second
	// DefaultRainRateWindow is Config.RainRateWindow's default.
	DefaultRainRateWindow = 15 * time.Minute
	// DefaultRainTotalGap is Config.RainTotalGap's default.
	DefaultRainTotalGap = time.Hour
)

// Config configures a Processor.
type Config struct {
	// Tolerance is the largest distance in device time between a primary
	// reading and a partner it pairs with. Default DefaultTolerance (60 s).
	Tolerance time.Duration
	// RainRateWindow is the window of rain_rate: at each rain reading, the
	// rain of the station's readings in the window ending at it (its own
	// included), per hour. Default DefaultRainRateWindow (15 min).
	RainRateWindow time.Duration
	// RainTotalGap is the longest time between two readings of a running
	// total (rain_total) whose difference is taken as rain: after a longer
	// silence, the next reading only starts the count again, for the rain
	// of the silence cannot be placed in time. Default DefaultRainTotalGap
	// (1 h).
	RainTotalGap time.Duration
	// Quantities are the pairing quantities computed; nil means Builtin().
	// Append a Quantity of your own to Builtin() to add it. Names must be
	// unique, and none may be rain or rain_rate (computed from the rain
	// series, always on).
	Quantities []Quantity
	// DisableEvents emits no EventDerived events, for a sink without
	// events (postgres.Config.DisableEvents). Default false.
	DisableEvents bool
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"Tolerance": c.Tolerance, "RainRateWindow": c.RainRateWindow, "RainTotalGap": c.RainTotalGap} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("derived: Config.%s %s is negative", name, d))
		}
	}
	names := map[string]bool{rain: true, rainRate: true}
	for _, q := range c.Quantities {
		if err := q.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("derived: %w", err))
		}
		if names[q.Name] {
			errs = append(errs, fmt.Errorf("derived: quantity %q is defined twice or is a built-in of the rain series", q.Name))
		}
		names[q.Name] = true
	}
	slices.SortFunc(errs, func(a, b error) int { return cmp.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Processor computes the derived quantities as a postgres.Processor (a
// postgres.BatchProcessor: one set of queries per transaction). Put it
// after quality control in postgres.Config.Processors, so that readings
// that quality control flags fail (4), or revises, are left out and
// followed. It is safe for concurrent use.
type Processor struct {
	cfg     Config
	watched map[string]bool
	// partnerOf are the primary types of each partner type, partnersOf
	// the partner types of each primary type (see indexInputs).
	partnerOf, partnersOf map[string][]string
}

// New returns a Processor, or the error of cfg.Validate.
func New(cfg Config) (*Processor, error) {
	if cfg.Quantities == nil {
		cfg.Quantities = Builtin()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Tolerance = cmp.Or(cfg.Tolerance, DefaultTolerance)
	cfg.RainRateWindow = cmp.Or(cfg.RainRateWindow, DefaultRainRateWindow)
	cfg.RainTotalGap = cmp.Or(cfg.RainTotalGap, DefaultRainTotalGap)
	watched := map[string]bool{rain: true, rainTotal: true}
	for _, q := range cfg.Quantities {
		for _, s := range q.inputs() {
			watched[s] = true
		}
	}
	p := &Processor{cfg: cfg, watched: watched}
	p.indexInputs()
	return p, nil
}

// Name implements postgres.Processor.
func (p *Processor) Name() string { return Name }

// Watches implements postgres.SensorFilter: the inputs of the quantities,
// rain and rain_total.
func (p *Processor) Watches(context.Context, pgx.Tx) (func(sensor string) bool, error) {
	return func(sensor string) bool { return p.watched[sensor] }, nil
}

// Process implements postgres.Processor for one series; the sink calls
// ProcessBatch instead.
func (p *Processor) Process(ctx context.Context, tx pgx.Tx, s *postgres.Series) error {
	return p.ProcessBatch(ctx, tx, []*postgres.Series{s})
}

// ProcessBatch implements postgres.BatchProcessor: it recomputes, from the
// stored readings, every derived value whose inputs are among the series'
// released, late or revised readings, stores what changed and removes what
// no longer pairs, and emits one readings.derived event listing it.
func (p *Processor) ProcessBatch(ctx context.Context, tx pgx.Tx, series []*postgres.Series) error {
	var touched []touch
	for _, s := range series {
		for _, r := range s.Readings {
			touched = append(touched, touch{station: s.Station, sensor: s.Sensor, at: r.Time.UnixMicro(), released: true})
		}
		for _, r := range slices.Concat(s.Late, s.Revised) {
			touched = append(touched, touch{station: s.Station, sensor: s.Sensor, at: r.Time.UnixMicro()})
		}
	}
	events, err := p.recomputeEvents(ctx, tx, touched)
	if err != nil {
		return err
	}
	for _, e := range events {
		series[0].Emit(e)
	}
	return nil
}

// recomputeEvents recomputes the derived values whose inputs are touched
// and returns the EventDerived events announcing what changed (none with
// Config.DisableEvents).
func (p *Processor) recomputeEvents(ctx context.Context, tx pgx.Tx, touched []touch) ([]sensorhub.Event, error) {
	changes, err := p.recompute(ctx, tx, touched)
	if err != nil || p.cfg.DisableEvents {
		return nil, err
	}
	return newDerivedEvents(changes)
}

// Rebuild recomputes, within tx, every derived value of station whose
// inputs lie in [from, to] (a zero time is open), as if each input reading
// there had just been stored, and returns the EventDerived events that
// announce what changed (none with Config.DisableEvents), for the caller to
// write to the outbox in tx. Calibration calls it after applying a
// calibration to stored readings (see Follow); `sensorhub station set
// --elevation` after changing a station's elevation. The caller holds the
// station's lock (postgres.LockStation), as the sink does when it
// processes.
func (p *Processor) Rebuild(ctx context.Context, tx pgx.Tx, station string, from, to time.Time) ([]sensorhub.Event, error) {
	changes, err := p.rebuild(ctx, tx, station, from, to)
	if err != nil || p.cfg.DisableEvents {
		return nil, err
	}
	return newDerivedEvents(changes)
}

// rebuild is Rebuild, returning the changes.
func (p *Processor) rebuild(ctx context.Context, tx pgx.Tx, station string, from, to time.Time) ([]change, error) {
	sensors := make([]string, 0, len(p.watched))
	for s := range p.watched {
		sensors = append(sensors, s)
	}
	var lo, hi *time.Time // nil: open
	if !from.IsZero() {
		lo = &from
	}
	if !to.IsZero() {
		hi = &to
	}
	rows, err := tx.Query(ctx, `SELECT sensor, ts FROM readings WHERE station = $1 AND sensor = ANY($2)
  AND ts >= coalesce($3::timestamptz, '-infinity') AND ts <= coalesce($4::timestamptz, 'infinity')`,
		station, sensors, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("derived: rebuild %s: %w", station, err)
	}
	var (
		touched []touch
		sensor  string
		ts      time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&sensor, &ts}, func() error {
		touched = append(touched, touch{station: station, sensor: sensor, at: ts.UnixMicro()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("derived: rebuild %s: %w", station, err)
	}
	changes, err := p.recompute(ctx, tx, touched)
	if err != nil {
		return nil, fmt.Errorf("derived: rebuild %s: %w", station, err)
	}
	return changes, nil
}

var (
	_ postgres.BatchProcessor = (*Processor)(nil)
	_ postgres.SensorFilter   = (*Processor)(nil)
	_ calibration.Follower    = (*Processor)(nil)
	_ qc.Follower             = (*Processor)(nil)
)

// Follow implements calibration.Follower: the derived values computed from
// the readings a calibration changed are computed again (Rebuild), and
// announced in an EventDerived event.
func (p *Processor) Follow(ctx context.Context, tx pgx.Tx, a calibration.Applied) ([]sensorhub.Event, error) {
	var from, to time.Time
	if a.From != nil {
		from = *a.From
	}
	if a.To != nil {
		to = *a.To
	}
	return p.Rebuild(ctx, tx, a.Station, from, to)
}

// FollowFlags implements qc.Follower: the derived values computed from
// readings that quality control's Flag, Rebuild or Follow turned fail, or
// back from fail, are computed again, as when the sink hands the readings
// over in Series.Revised, and announced in an EventDerived event. A value
// whose input is now fail is computed from another partner within the
// tolerance, or removed.
func (p *Processor) FollowFlags(ctx context.Context, tx pgx.Tx, r qc.Reflagged) ([]sensorhub.Event, error) {
	if !p.watched[r.Sensor] {
		return nil, nil
	}
	touched := make([]touch, len(r.Readings))
	for i, rd := range r.Readings {
		touched[i] = touch{station: r.Station, sensor: r.Sensor, at: rd.Time.UnixMicro()}
	}
	events, err := p.recomputeEvents(ctx, tx, touched)
	if err != nil {
		return nil, fmt.Errorf("derived: follow the flags of %s/%s: %w", r.Station, r.Sensor, err)
	}
	return events, nil
}
