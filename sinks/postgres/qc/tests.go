package qc

import (
	"math"
	"slices"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// limits are the tests of one series: its type's declaration with the
// overrides of qc_settings applied, and the station's hemisphere.
type limits struct {
	sensorhub.QC
	south bool
}

// point is a stored reading as the tests see it.
type point struct {
	Time  time.Time
	Value float64
	// manual is the worst manual flag whose period holds the reading: 0,
	// 3 or 4.
	manual int16
}

// result is a reading's evaluation: its flag and the tests that set it,
// in the order of sensorhub's Test constants.
type result struct {
	flag  int16
	tests []string
}

// equal reports whether two results are the same.
func (r result) equal(flag int16, tests []string) bool {
	return r.flag == flag && slices.Equal(r.tests, tests)
}

// climatology reports whether v lies outside the plausible range of the
// month of t (in UTC), six months on south of the equator.
func climatology(l limits, t time.Time, v float64) bool {
	m := int(t.UTC().Month()) - 1
	if l.south {
		m = (m + 6) % 12
	}
	return !l.Climatology[m].Contains(v)
}

// neighbours reports whether a and b are close enough in device time for
// the neighbour-based tests.
func neighbours(l limits, a, b time.Time) bool {
	return b.Sub(a).Abs() <= l.Gap()
}

// spike is the QARTOD spike test (U.S. IOOS, "Manual for Real-Time Quality
// Control of In-situ Temperature and Salinity Data", v2.1 2020, test 9):
// |x − (a+b)/2| − |a−b|/2 > threshold, which is the distance from x to the
// nearer end of the interval between its neighbours a and b: x is far
// above both or far below both. It needs both neighbours.
func spike(l limits, prev *point, p point, next *point) bool {
	if l.Spike <= 0 || prev == nil || next == nil || !neighbours(l, prev.Time, p.Time) || !neighbours(l, p.Time, next.Time) {
		return false
	}
	a, b := prev.Value, next.Value
	return math.Abs(p.Value-(a+b)/2)-math.Abs(a-b)/2 > l.Spike
}

// rateOfChange reports whether the step from prev to p is larger than the
// type allows in the time between them, counted as one minute at least
// (QARTOD rate of change test, test 10 of the manual cited at spike).
func rateOfChange(l limits, prev *point, p point) bool {
	if l.RateOfChange <= 0 || prev == nil || !neighbours(l, prev.Time, p.Time) {
		return false
	}
	minutes := max(p.Time.Sub(prev.Time).Minutes(), 1)
	return math.Abs(p.Value-prev.Value) > l.RateOfChange*minutes
}

// run is the flat line ending at a reading: consecutive readings, each
// within the tolerance of the one before and MaxGap after it.
type run struct {
	Start time.Time `json:"start"`
	Count int       `json:"count"`
	// Last and Value are the last reading's, which the next one extends.
	Last  time.Time `json:"last"`
	Value float64   `json:"value"`
}

// extend returns the run ending at p, which follows the run r's last
// reading (r is zero when p has no predecessor).
func extend(l limits, r run, p point) run {
	if r.Count > 0 && neighbours(l, r.Last, p.Time) && math.Abs(p.Value-r.Value) <= l.FlatLine.Tolerance {
		return run{Start: r.Start, Count: r.Count + 1, Last: p.Time, Value: p.Value}
	}
	return run{Start: p.Time, Count: 1, Last: p.Time, Value: p.Value}
}

// breaks reports whether p, following prev, starts a run of its own: a
// reading before prev cannot change the run ending at p or any after it.
func breaks(l limits, prev, p point) bool {
	return extend(l, run{Count: 1, Last: prev.Time, Value: prev.Value}, p).Count == 1
}

// flatLine reports whether the run ending at a reading is long enough, in
// readings and in time, to be a sensor stuck at one value. A run at zero of
// a type with a companion also needs the companion above zero within it:
// companion reports whether it read above zero in [from, to].
func flatLine(l limits, r run, companion func(from, to time.Time) bool) bool {
	if !l.FlatLine.On() || r.Count < l.FlatLine.Count || r.Last.Sub(r.Start) < l.FlatLine.Period {
		return false
	}
	if l.FlatLine.Companion == "" || math.Abs(r.Value) > l.FlatLine.Tolerance {
		return true
	}
	return companion != nil && companion(r.Start, r.Last)
}

// evaluate returns p's flags: the worst of its tests, pass when none
// fails. Climatology and rate of change give at most suspect (3); spike,
// flat line and a manual flag may give fail (4). r is the run ending at p;
// companion is flatLine's.
func evaluate(l limits, prev *point, p point, next *point, r run, companion func(from, to time.Time) bool) result {
	res := result{flag: sensorhub.FlagPass}
	flag := func(test string, f int16) {
		res.tests = append(res.tests, test)
		res.flag = max(res.flag, f)
	}
	if climatology(l, p.Time, p.Value) {
		flag(sensorhub.TestClimatology, sensorhub.FlagSuspect)
	}
	if spike(l, prev, p, next) {
		flag(sensorhub.TestSpike, sensorhub.FlagFail)
	}
	if rateOfChange(l, prev, p) {
		flag(sensorhub.TestRateOfChange, sensorhub.FlagSuspect)
	}
	if flatLine(l, r, companion) {
		flag(sensorhub.TestFlatLine, sensorhub.FlagFail)
	}
	if p.manual > 0 {
		flag(sensorhub.TestManual, p.manual)
	}
	return res
}

// walker evaluates a series pushed to it in device-time order: each
// reading is evaluated once the next one (its other neighbour) is pushed,
// or at finish.
type walker struct {
	l limits
	// companion is flatLine's; nil when the type has none.
	companion func(from, to time.Time) bool
	prev      *point // before cur
	cur       *point // pushed, not yet evaluated
	run       run    // the run ending at cur
}

// push adds p, the reading after the last one pushed, and returns the
// evaluation of that last one, if any.
func (w *walker) push(p point) (done point, res result, ok bool) {
	next := extend(w.l, w.run, p)
	if w.cur != nil {
		done, res, ok = *w.cur, evaluate(w.l, w.prev, *w.cur, &p, w.run, w.companion), true
	}
	w.prev, w.cur, w.run = w.cur, &p, next
	return done, res, ok
}

// finish evaluates the last reading pushed, which has no next neighbour.
func (w *walker) finish() (done point, res result, ok bool) {
	if w.cur == nil {
		return point{}, result{}, false
	}
	done, res = *w.cur, evaluate(w.l, w.prev, *w.cur, nil, w.run, w.companion)
	w.prev, w.cur = w.cur, nil
	return done, res, true
}
