// Package threshold is sensorhub's built-in threshold rule: it watches the
// readings of chosen sensor types (and stations) and emits a
// sensorhub.EventThresholdCrossed event when a value crosses a bound, and
// again when it comes back, with hysteresis so that a value hovering at the
// bound does not flap.
//
// Rules are written as a small text syntax, comma-separated:
//
//	temperature>30/28        any station: raise when above 30, clear when below 28
//	temperature@roof<0/1     station roof: raise when below 0, clear when above 1
//	humidity>95              no hysteresis: clear when below 95 again
//
// For one sensor type, station and direction (> or <), a rule naming the
// station replaces the rule for any station.
//
//	rules, err := threshold.Parse(os.Getenv("SENSORHUB_THRESHOLDS"))
//	...
//	eval := threshold.New(rules)
//	types := eval.WrapAll(handlers.Builtin()) // then sensorhub.New(cfg, types...)
//
// The state behind the hysteresis, whether a rule is raised for a station,
// is kept in memory per rule, station and sensor type. A restart forgets it:
// each rule starts cleared and re-evaluates from the next reading, so a
// condition still present after a restart is announced again (an alert may
// repeat, it is never lost to a restart).
package threshold

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Version is the schema version of Crossed.
const Version = 1

// Directions of a crossing, as Crossed.Direction spells them. Part of the
// wire contract of threshold.crossed events.
const (
	Rising  = "rising"
	Falling = "falling"
)

// Crossed is the payload of a sensorhub.EventThresholdCrossed event,
// version 1: one reading crossed a rule's bound (Active true, the alarm is
// raised) or its clear level (Active false, the alarm is cleared).
type Crossed struct {
	// Rule is the rule in its canonical text form, e.g. "temperature@roof<0/1".
	Rule string `json:"rule"`
	// Station, Sensor, Time, Value and Unit are the reading's; Time is its
	// device time, RFC 3339 in UTC.
	Station string    `json:"station"`
	Sensor  string    `json:"sensor"`
	Time    time.Time `json:"ts"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	// Operator is ">" (raised above Threshold) or "<" (raised below it).
	Operator string `json:"operator"`
	// Threshold raises the alarm; Clear clears it.
	Threshold float64 `json:"threshold"`
	Clear     float64 `json:"clear"`
	// Direction is how the value moved: Rising or Falling.
	Direction string `json:"direction"`
	// Active is true when the alarm was raised, false when it cleared.
	Active bool `json:"active"`
}

// Rule raises an alarm when a reading of Sensor (at Station, or any
// station when Station is empty) goes beyond Threshold, and clears it when
// a later reading comes back beyond Clear.
type Rule struct {
	Sensor  string
	Station string
	// Above selects ">": raise when the value is above Threshold, clear
	// when it is below Clear. False selects "<": raise below Threshold,
	// clear above Clear.
	Above bool
	// Threshold is the raising bound.
	Threshold float64
	// Clear is the clearing level: at or below Threshold for ">", at or
	// above it for "<". Equal to Threshold means no hysteresis.
	Clear float64
}

// String returns the rule in the syntax Parse reads.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Sensor)
	if r.Station != "" {
		b.WriteString("@" + r.Station)
	}
	b.WriteString(r.operator())
	b.WriteString(strconv.FormatFloat(r.Threshold, 'g', -1, 64))
	if r.Clear != r.Threshold {
		b.WriteString("/" + strconv.FormatFloat(r.Clear, 'g', -1, 64))
	}
	return b.String()
}

func (r Rule) operator() string {
	if r.Above {
		return ">"
	}
	return "<"
}

var (
	sensorPattern  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	stationPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
)

// Validate reports every problem with the rule at once.
func (r Rule) Validate() error {
	var errs []error
	if !sensorPattern.MatchString(r.Sensor) {
		errs = append(errs, fmt.Errorf("sensor type %q does not match %s", r.Sensor, sensorPattern))
	}
	if r.Station != "" && !stationPattern.MatchString(r.Station) {
		errs = append(errs, fmt.Errorf("station %q does not match %s", r.Station, stationPattern))
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) || math.IsNaN(r.Clear) || math.IsInf(r.Clear, 0) {
		errs = append(errs, errors.New("threshold and clear level must be finite numbers"))
	} else if r.Above && r.Clear > r.Threshold {
		errs = append(errs, fmt.Errorf("clear level %v is above the threshold %v of a > rule", r.Clear, r.Threshold))
	} else if !r.Above && r.Clear < r.Threshold {
		errs = append(errs, fmt.Errorf("clear level %v is below the threshold %v of a < rule", r.Clear, r.Threshold))
	}
	return errors.Join(errs...)
}

// Parse reads comma-separated rules in the syntax of the package comment.
// Blank input means no rules. Its error names every bad entry, by position
// and text.
func Parse(spec string) ([]Rule, error) {
	var (
		rules []Rule
		errs  []error
		seen  = map[string]int{} // sensor@station op -> entry
	)
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		r, err := parseRule(entry)
		if err == nil {
			err = r.Validate()
		}
		if err == nil {
			k := r.Sensor + "@" + r.Station + r.operator()
			if j, dup := seen[k]; dup {
				err = fmt.Errorf("repeats entry %d for the same sensor type, station and direction", j)
			}
			seen[k] = i + 1
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d %q: %w", i+1, entry, err))
			continue
		}
		rules = append(rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("threshold rules (syntax sensor[@station]>threshold[/clear] or <, comma-separated):\n%w", err)
	}
	return rules, nil
}

func parseRule(entry string) (Rule, error) {
	at := strings.IndexAny(entry, "<>")
	if at < 0 {
		return Rule{}, errors.New("no > or <")
	}
	r := Rule{Sensor: entry[:at], Above: entry[at] == '>'}
	if name, station, ok := strings.Cut(r.Sensor, "@"); ok {
		r.Sensor, r.Station = name, station
		if station == "" {
			return Rule{}, errors.New("empty station after @")
		}
	}
	bound, clear, hasClear := strings.Cut(entry[at+1:], "/")
	var err error
	if r.Threshold, err = strconv.ParseFloat(bound, 64); err != nil {
		return Rule{}, fmt.Errorf("threshold %q is not a number", bound)
	}
	r.Clear = r.Threshold
	if hasClear {
		if r.Clear, err = strconv.ParseFloat(clear, 64); err != nil {
			return Rule{}, fmt.Errorf("clear level %q is not a number", clear)
		}
	}
	return r, nil
}

// Evaluator applies rules to readings and remembers, per rule, station and
// sensor type, whether the alarm is raised. It is safe for concurrent use.
type Evaluator struct {
	rules map[string][]Rule // by sensor type

	mu    sync.Mutex
	state map[stateKey]*state
}

type stateKey struct{ rule, station string }

// state is one rule's memory for one station.
type state struct {
	active bool
	// last is the device time of the latest reading evaluated; older
	// readings arriving late do not move the state.
	last time.Time
	// crossedAt is the device time of the reading that caused the latest
	// crossing, and event its event: evaluating that reading again (a retry
	// after a failed commit, a redelivery) emits the same event, UUID and
	// all, so it is neither lost nor announced twice.
	crossedAt time.Time
	event     sensorhub.Event
}

// New returns an Evaluator for rules, validated beforehand (Parse does).
func New(rules []Rule) *Evaluator {
	e := &Evaluator{rules: make(map[string][]Rule), state: make(map[stateKey]*state)}
	for _, r := range rules {
		e.rules[r.Sensor] = append(e.rules[r.Sensor], r)
	}
	return e
}

// uuidSpace is the namespace of the UUIDs of threshold events, derived
// from rule, station and the reading's time, so that repeats share one.
var uuidSpace = uuid.MustParse("5f0c5d8e-4f6b-4a43-9f43-8d7f0b8e2a61")

// Evaluate returns the events r causes, and records its effect. Readings
// must come in device-time order per station and sensor type; an older one
// than the latest seen changes nothing.
func (e *Evaluator) Evaluate(r sensorhub.Reading) ([]sensorhub.Event, error) {
	var events []sensorhub.Event
	for _, rule := range e.applicable(r) {
		ev, ok, err := e.evaluate(rule, r)
		if err != nil {
			return nil, err
		}
		if ok {
			events = append(events, ev)
		}
	}
	return events, nil
}

// applicable returns the rules for r: per direction, the one naming r's
// station, or else the one for any station.
func (e *Evaluator) applicable(r sensorhub.Reading) []Rule {
	var above, below *Rule
	for i, rule := range e.rules[r.Sensor] {
		if rule.Station != "" && rule.Station != r.Station {
			continue
		}
		slot := &below
		if rule.Above {
			slot = &above
		}
		if *slot == nil || rule.Station != "" {
			*slot = &e.rules[r.Sensor][i]
		}
	}
	var out []Rule
	for _, p := range []*Rule{above, below} {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}

func (e *Evaluator) evaluate(rule Rule, r sensorhub.Reading) (sensorhub.Event, bool, error) {
	spec := rule.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	k := stateKey{rule: spec, station: r.Station}
	st := e.state[k]
	if st == nil {
		st = &state{}
		e.state[k] = st
	}
	switch {
	case !st.crossedAt.IsZero() && r.Time.Equal(st.crossedAt):
		return st.event, true, nil
	case !st.last.IsZero() && !r.Time.After(st.last):
		return sensorhub.Event{}, false, nil
	}
	st.last = r.Time
	raise := (rule.Above && r.Value > rule.Threshold) || (!rule.Above && r.Value < rule.Threshold)
	clear := (rule.Above && r.Value < rule.Clear) || (!rule.Above && r.Value > rule.Clear)
	if (st.active && !clear) || (!st.active && !raise) {
		return sensorhub.Event{}, false, nil
	}
	st.active = !st.active
	direction := Falling // "<" raised, or ">" cleared
	if rule.Above == st.active {
		direction = Rising
	}
	p := Crossed{
		Rule: spec, Station: r.Station, Sensor: r.Sensor, Time: r.Time.UTC(), Value: r.Value, Unit: r.Unit,
		Operator: rule.operator(), Threshold: rule.Threshold, Clear: rule.Clear, Active: st.active,
		Direction: direction,
	}
	id := uuid.NewSHA1(uuidSpace, []byte(spec+"|"+r.Station+"|"+r.Time.UTC().Format(time.RFC3339Nano)))
	ev, err := sensorhub.NewEventAt(id.String(), sensorhub.EventThresholdCrossed, Version, r.Time, p)
	if err != nil {
		st.active = !st.active
		return sensorhub.Event{}, false, fmt.Errorf("threshold: %w", err)
	}
	st.crossedAt, st.event = r.Time, ev
	return ev, true, nil
}

// Wrap returns t with its handler wrapped: the readings it produces (the
// reading itself when t has no handler) are evaluated, and the crossings'
// events join its output. Types no rule names are returned unchanged.
func (e *Evaluator) Wrap(t sensorhub.SensorType) sensorhub.SensorType {
	if len(e.rules[t.Name]) == 0 && t.Name != sensorhub.CatchAll {
		return t
	}
	next := t.Handle
	t.Handle = func(ctx context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
		out := sensorhub.Batch{Readings: []sensorhub.Reading{r}}
		if next != nil {
			var err error
			if out, err = next(ctx, r); err != nil {
				return out, err
			}
		}
		for _, stored := range out.Readings {
			events, err := e.Evaluate(stored)
			if err != nil {
				return sensorhub.Batch{}, err
			}
			out.Events = append(out.Events, events...)
		}
		return out, nil
	}
	return t
}

// WrapAll wraps every type of types (see Wrap) and returns them in a new
// slice.
func (e *Evaluator) WrapAll(types []sensorhub.SensorType) []sensorhub.SensorType {
	out := make([]sensorhub.SensorType, len(types))
	for i, t := range types {
		out[i] = e.Wrap(t)
	}
	return out
}

// Sensors returns the sensor types some rule names, for checking them
// against the registered types.
func (e *Evaluator) Sensors() []string {
	out := make([]string, 0, len(e.rules))
	for s := range e.rules {
		out = append(out, s)
	}
	return out
}
