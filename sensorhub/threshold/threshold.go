// Package threshold is the syntax and the logic of sensorhub's built-in
// threshold rule: a rule watches the readings of a sensor type (at one
// station or all) and raises an alarm when a value crosses a bound, and
// clears it when the value comes back, with hysteresis so that a value
// hovering at the bound does not flap. Each change is announced with a
// sensorhub.EventThresholdCrossed event whose payload is a Crossed.
//
// Rules are written as a small text syntax, comma-separated:
//
//	temperature>30/28        any station: raise when above 30, clear when below 28
//	temperature@roof<0/1     station roof: raise when below 0, clear when above 1
//	humidity>95              no hysteresis: clear when below 95 again
//
// For one sensor type, station and direction (> or <), a rule naming the
// station replaces the rule for any station (Select).
//
// This package holds no state: package sinks/postgres/alarms runs the rules
// as a processor of the Postgres sink, with the rules and every alarm's
// state in PostgreSQL, changed in the transaction that stores the readings.
//
//	rules, err := threshold.Parse(os.Getenv("SENSORHUB_THRESHOLDS"))
//	...
//	active = rule.Next(active, reading.Value) // per reading, in device-time order
package threshold

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

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
	// RuleID is the rule's ID in the table threshold_rules (see `sensorhub
	// rule list`); absent for a rule that is not stored there.
	RuleID int64 `json:"rule_id,omitempty"`
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

// Select returns the rules of rules that apply to a reading of sensor at
// station: per direction, the one naming the station, or else the one for
// every station. The result is in rules' order.
func Select(rules []Rule, station, sensor string) []Rule {
	var above, below = -1, -1
	for i, rule := range rules {
		if rule.Sensor != sensor || (rule.Station != "" && rule.Station != station) {
			continue
		}
		slot := &below
		if rule.Above {
			slot = &above
		}
		if *slot < 0 || rule.Station != "" {
			*slot = i
		}
	}
	var out []Rule
	for i, rule := range rules {
		if i == above || i == below {
			out = append(out, rule)
		}
	}
	return out
}

// Next returns whether the alarm is raised after a reading of value, given
// whether it was raised before: a cleared alarm is raised beyond
// Threshold, a raised one cleared beyond Clear.
func (r Rule) Next(active bool, value float64) bool {
	if active {
		clear := (r.Above && value < r.Clear) || (!r.Above && value > r.Clear)
		return !clear
	}
	return (r.Above && value > r.Threshold) || (!r.Above && value < r.Threshold)
}

// Crossing returns the payload announcing that reading moved the alarm of
// r to active.
func (r Rule) Crossing(reading sensorhub.Reading, active bool) Crossed {
	direction := Falling // "<" raised, or ">" cleared
	if r.Above == active {
		direction = Rising
	}
	return Crossed{
		Rule: r.String(), Station: reading.Station, Sensor: reading.Sensor, Time: reading.Time.UTC(),
		Value: reading.Value, Unit: reading.Unit, Operator: r.operator(), Threshold: r.Threshold, Clear: r.Clear,
		Direction: direction, Active: active,
	}
}
