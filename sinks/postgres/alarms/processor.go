// Package alarms runs sensorhub's threshold rules (package threshold) as a
// processor of the Postgres sink (postgres.Processor): the rules live in
// the table threshold_rules, managed with AddRule, ListRules and
// RemoveRule (the `sensorhub rule` command) and seeded with SeedRules, and
// the state of every alarm lives in PostgreSQL, changed in the transaction
// that stores the readings that change it.
//
//	_, err := alarms.SeedRules(ctx, pool, rules) // e.g. from SENSORHUB_THRESHOLDS
//	...
//	sink, err := postgres.New(postgres.Config{DB: pool, Processors: []postgres.Processor{alarms.New(alarms.Config{})}})
//
// Because the sink hands the processor each (station, sensor) series in
// device-time order once the reorder window has passed, a condition is
// announced once, raise before clear, across restarts, crashes, redeliveries
// and replicas: a threshold.crossed event's UUID is derived from the rule,
// the reading and the new state, so a repeat is deduped by consumers, and
// the state it moves from is committed with it. A reading later than the
// window does not move an alarm (the sink announces it as reading.late).
package alarms

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres"
)

// Name is the processor's name, under which its state is stored. Do not
// rename it: the alarms would all start cleared.
const Name = "threshold"

// DefaultRefresh is Config.Refresh's default.
const DefaultRefresh = 2 * time.Second

// Config configures a Processor.
type Config struct {
	// Refresh is how long the rules read from threshold_rules are used
	// before they are read again, within some commit transaction: a rule
	// added or removed takes effect within it. Default DefaultRefresh
	// (2 s).
	Refresh time.Duration
}

// Processor is the threshold rules as a postgres.Processor. It is safe for
// concurrent use.
type Processor struct {
	refresh time.Duration

	mu       sync.Mutex
	rules    []StoredRule
	loadedAt time.Time
}

// New returns a Processor.
func New(cfg Config) *Processor {
	return &Processor{refresh: cmp.Or(cfg.Refresh, DefaultRefresh)}
}

// Name implements postgres.Processor.
func (p *Processor) Name() string { return Name }

// state is a series' state: the alarms raised, by rule ID, with the device
// time of the reading that raised each. A cleared alarm has no entry.
type state map[int64]time.Time

// Watches implements postgres.SensorFilter: the sensor types some rule
// names.
func (p *Processor) Watches(ctx context.Context, tx pgx.Tx) (func(sensor string) bool, error) {
	rules, err := p.load(ctx, tx)
	if err != nil {
		return nil, err
	}
	return func(sensor string) bool {
		return slices.ContainsFunc(rules, func(r StoredRule) bool { return r.Sensor == sensor })
	}, nil
}

// Process implements postgres.Processor: it applies the rules to the
// released readings in order and emits a threshold.crossed event for each
// alarm raised or cleared. Late readings change nothing. The alarms of
// rules that no longer apply to the series (removed, or replaced by a rule
// for its station) are dropped without an event.
func (p *Processor) Process(ctx context.Context, tx pgx.Tx, s *postgres.Series) error {
	if len(s.Readings) == 0 {
		return nil
	}
	all, err := p.load(ctx, tx)
	if err != nil {
		return err
	}
	var st state
	if s.State != nil {
		if err := json.Unmarshal(s.State, &st); err != nil {
			return fmt.Errorf("alarms: decode state of %s/%s: %w", s.Station, s.Sensor, err)
		}
	}
	if st == nil { // never saved, or saved as JSON null
		st = state{}
	}
	rules := applicable(all, s.Station, s.Sensor)
	for id := range st {
		if !slices.ContainsFunc(rules, func(r StoredRule) bool { return r.ID == id }) {
			delete(st, id)
		}
	}
	for _, r := range s.Readings {
		for _, rule := range rules {
			_, was := st[rule.ID]
			next := rule.Next(was, r.Value)
			if next == was {
				continue
			}
			if next {
				st[rule.ID] = r.Time.UTC()
			} else {
				delete(st, rule.ID)
			}
			e, err := crossedEvent(rule, r, next)
			if err != nil {
				return err
			}
			s.Emit(e)
		}
	}
	if s.State, err = json.Marshal(st); err != nil {
		return fmt.Errorf("alarms: encode state of %s/%s: %w", s.Station, s.Sensor, err)
	}
	return nil
}

// load returns the stored rules, read within tx when older than Refresh.
func (p *Processor) load(ctx context.Context, tx pgx.Tx) ([]StoredRule, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loadedAt.IsZero() && time.Since(p.loadedAt) < p.refresh {
		return p.rules, nil
	}
	rules, err := ListRules(ctx, tx)
	if err != nil {
		return nil, err
	}
	p.rules, p.loadedAt = rules, time.Now()
	return rules, nil
}

// applicable returns the rules threshold.Select picks for the series, in
// ID order.
func applicable(stored []StoredRule, station, sensor string) []StoredRule {
	rules := make([]threshold.Rule, len(stored))
	for i, r := range stored {
		rules[i] = r.Rule
	}
	var out []StoredRule
	for _, r := range threshold.Select(rules, station, sensor) {
		i := slices.IndexFunc(stored, func(s StoredRule) bool { return s.Rule == r })
		out = append(out, stored[i])
	}
	return out
}

// crossedSpace is the UUID namespace of the threshold.crossed events of
// stored rules. Never change it: consumers dedupe by the UUIDs derived
// from it.
var crossedSpace = uuid.MustParse("0d3b6f9e-7c21-4f0a-b5d8-9e4a2c1f6b70")

// crossedEvent returns the event announcing that reading r moved rule's
// alarm to active. Its UUID is derived from the rule, the reading's key
// and active, so every replica and retry that derives it gives it one UUID.
func crossedEvent(rule StoredRule, r sensorhub.Reading, active bool) (sensorhub.Event, error) {
	p := rule.Crossing(r, active)
	p.RuleID = rule.ID
	name := strconv.FormatInt(rule.ID, 10) + "\x00" + p.Rule + "\x00" + r.Station + "\x00" + r.Sensor + "\x00" +
		strconv.FormatInt(r.Time.UnixMicro(), 10) + "\x00" + strconv.FormatBool(active)
	e, err := sensorhub.NewEventAt(uuid.NewSHA1(crossedSpace, []byte(name)).String(), sensorhub.EventThresholdCrossed, threshold.Version, r.Time, p)
	if err != nil {
		return sensorhub.Event{}, fmt.Errorf("alarms: %w", err)
	}
	return e, nil
}

var _ postgres.SensorFilter = (*Processor)(nil)
