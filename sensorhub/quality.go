package sensorhub

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Quality-control flags, QARTOD codes (DESIGN.md §12), as stored in
// readings.qc_flag. Do not renumber them.
const (
	FlagPass         = 1
	FlagNotEvaluated = 2
	FlagSuspect      = 3
	FlagFail         = 4
)

// Names of the quality-control tests, as stored in readings.qc_tests. Do not
// rename them.
const (
	TestClimatology  = "climatology"
	TestSpike        = "spike"
	TestRateOfChange = "rate_of_change"
	TestFlatLine     = "flat_line"
	TestManual       = "manual"
)

// DefaultMaxGap is QC.MaxGap's default.
const DefaultMaxGap = 15 * time.Minute

// QC declares a sensor type's quality-control tests, which the Postgres
// sink's qc processor (package sinks/postgres/qc) runs on every stored
// reading; docs/quality.md tells how. Each test whose fields are zero is
// off, so the zero QC runs none: a custom type declares the tests that make
// sense for it, e.g.
//
//	sensorhub.SensorType{Name: "soil_temperature", Unit: "Cel", Min: -50, Max: 80,
//		QC: sensorhub.QC{Spike: 5, RateOfChange: 1, Climatology: sensorhub.AllYear(-30, 45)}}
//
// Operators override the limits per station in the database (`sensorhub qc
// set`).
type QC struct {
	// Climatology is the plausible range of each calendar month, January
	// first, in the northern hemisphere; a station whose latitude is
	// south of the equator uses the range six months on. A value outside
	// is suspect (3). A month whose Min and Max are both zero has no
	// range.
	Climatology [12]Range
	// Spike flags a value more than Spike above both of its neighbours,
	// or below both, as fail (4): the QARTOD spike test. 0: off.
	Spike float64
	// RateOfChange is the largest plausible change in one minute; a step
	// from the previous reading larger than RateOfChange × the minutes
	// between them (at least one) is suspect (3). 0: off.
	RateOfChange float64
	// FlatLine flags a sensor stuck at one value as fail (4).
	FlatLine FlatLine
	// MaxGap bounds the neighbour-based tests (spike, rate of change,
	// flat line): readings farther apart than MaxGap in device time are
	// not neighbours. Default DefaultMaxGap (15 min).
	MaxGap time.Duration
}

// Range is a closed interval of plausible values.
type Range struct{ Min, Max float64 }

// set reports whether the range is given.
func (r Range) set() bool { return r.Min != 0 || r.Max != 0 }

// Contains reports whether v is inside the range; an unset range contains
// every value.
func (r Range) Contains(v float64) bool { return !r.set() || (v >= r.Min && v <= r.Max) }

// AllYear returns the same climatology range for every month.
func AllYear(min, max float64) [12]Range {
	var out [12]Range
	for i := range out {
		out[i] = Range{min, max}
	}
	return out
}

// FlatLine is the flat-line test: a reading ends a flat line when it and the
// readings before it, each within Tolerance of the one before, number at
// least Count and span at least Period of device time. Both Count and
// Period must be set for the test to run.
type FlatLine struct {
	// Count is the fewest readings of a flat line.
	Count int
	// Period is the shortest device time a flat line spans, from its first
	// reading to its last.
	Period time.Duration
	// Tolerance is how far apart two consecutive readings may be and still
	// be "the same value". Default 0: equal.
	Tolerance float64
	// Companion names a sensor type of the same station that reads above
	// zero whenever this one truly does, such as wind_gust for wind_speed:
	// a run at zero (within Tolerance) is then a flat line only if the
	// companion read above zero between its first and last reading, since
	// both at zero is a calm. Runs at other values are flat lines as
	// usual. Default none.
	Companion string
}

// On reports whether the test runs.
func (f FlatLine) On() bool { return f.Count > 0 && f.Period > 0 }

// Gap returns MaxGap or its default.
func (q QC) Gap() time.Duration {
	if q.MaxGap > 0 {
		return q.MaxGap
	}
	return DefaultMaxGap
}

// Validate reports every problem with the declaration at once.
func (q QC) Validate() error {
	var errs []error
	for i, r := range q.Climatology {
		if math.IsNaN(r.Min) || math.IsNaN(r.Max) || math.IsInf(r.Min, 0) || math.IsInf(r.Max, 0) || r.Min > r.Max {
			errs = append(errs, fmt.Errorf("climatology of %s: invalid range [%v, %v]", time.Month(i+1), r.Min, r.Max))
		}
	}
	for name, v := range map[string]float64{"spike": q.Spike, "rate of change": q.RateOfChange, "flat line tolerance": q.FlatLine.Tolerance} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			errs = append(errs, fmt.Errorf("%s %v must be a finite number, 0 or more", name, v))
		}
	}
	if q.FlatLine.Count < 0 || q.FlatLine.Period < 0 {
		errs = append(errs, fmt.Errorf("flat line count %d and period %s must not be negative", q.FlatLine.Count, q.FlatLine.Period))
	}
	if c := q.FlatLine.Companion; c != "" && !sensorName.match(c) {
		errs = append(errs, fmt.Errorf("flat line companion %q does not match %s", c, sensorName))
	}
	if q.MaxGap < 0 {
		errs = append(errs, fmt.Errorf("max gap %s must not be negative", q.MaxGap))
	}
	return errors.Join(errs...)
}
