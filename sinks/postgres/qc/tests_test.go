package qc

import (
	"slices"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
)

var t0 = time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)

func at(minutes float64, v float64) point {
	return point{Time: t0.Add(time.Duration(minutes * float64(time.Minute))), Value: v}
}

func TestClimatologyBoundsAreInclusiveAndFollowTheHemisphere(t *testing.T) {
	t.Parallel()
	l := limits{QC: sensorhub.QC{Climatology: [12]sensorhub.Range{0: {Min: -10, Max: 10}, 6: {Min: 5, Max: 35}}}}
	cases := []struct {
		name  string
		south bool
		t     time.Time
		v     float64
		want  bool
	}{
		{"at the minimum", false, t0, -10, false},
		{"at the maximum", false, t0, 10, false},
		{"just above", false, t0, 10.001, true},
		{"just below", false, t0, -10.001, true},
		{"month without a range", false, time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), 1000, false},
		{"January south uses July", true, t0, 30, false},
		{"January south below July's range", true, t0, 0, true},
		{"July south uses January", true, time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), 30, true},
		{"month in UTC, not the offset's", false, time.Date(2024, 2, 1, 0, 30, 0, 0, time.FixedZone("", 3600)), 30, true},
	}
	for _, c := range cases {
		l.south = c.south
		if got := climatology(l, c.t, c.v); got != c.want {
			t.Errorf("%s: climatology(%v at %s) = %v, want %v", c.name, c.v, c.t, got, c.want)
		}
	}
}

func TestSpikeIsTheQARTODTest(t *testing.T) {
	t.Parallel()
	l := limits{QC: sensorhub.QC{Spike: 8}}
	p := func(m, v float64) *point { x := at(m, v); return &x }
	cases := []struct {
		name       string
		prev, next *point
		v          float64
		want       bool
	}{
		{"exactly the threshold above both", p(-1, 10), p(1, 10), 18, false},
		{"above both by more", p(-1, 10), p(1, 10), 18.01, true},
		{"below both by more", p(-1, 10), p(1, 12), 1.99, true},
		{"far from the mean but between the neighbours", p(-1, 0), p(1, 30), 25, false},
		{"above the nearer end by the threshold", p(-1, 0), p(1, 30), 38, false},
		{"above the higher neighbour by more", p(-1, 0), p(1, 30), 38.5, true},
		{"no previous reading", nil, p(1, 10), 30, false},
		{"no next reading", p(-1, 10), nil, 30, false},
		{"previous beyond the gap", p(-16, 10), p(1, 10), 30, false},
		{"next at the gap", p(-1, 10), p(15, 10), 30, true},
	}
	for _, c := range cases {
		if got := spike(l, c.prev, at(0, c.v), c.next); got != c.want {
			t.Errorf("%s: spike = %v, want %v", c.name, got, c.want)
		}
	}
	if spike(limits{}, p(-1, 0), at(0, 1000), p(1, 0)) {
		t.Error("spike with threshold 0 flagged: 0 must turn the test off")
	}
}

func TestRateOfChangeCountsAtLeastOneMinute(t *testing.T) {
	t.Parallel()
	l := limits{QC: sensorhub.QC{RateOfChange: 3}}
	cases := []struct {
		name    string
		prevMin float64
		step    float64
		want    bool
	}{
		{"the limit in one minute", -1, 3, false},
		{"above it in one minute", -1, 3.01, true},
		{"a fall above it", -1, -3.01, true},
		{"above it in ten seconds: still a minute's limit", -1.0 / 6, 3.01, true},
		{"below it in ten seconds", -1.0 / 6, 2.99, false},
		{"twice the limit in two minutes", -2, 6, false},
		{"more than twice in two minutes", -2, 6.01, true},
		{"any step beyond the gap", -16, 100, false},
	}
	for _, c := range cases {
		prev := at(c.prevMin, 10)
		if got := rateOfChange(l, &prev, at(0, 10+c.step)); got != c.want {
			t.Errorf("%s: rateOfChange = %v, want %v", c.name, got, c.want)
		}
	}
	prev := at(-1, 0)
	if rateOfChange(limits{}, &prev, at(0, 1000)) || rateOfChange(l, nil, at(0, 1000)) {
		t.Error("rate of change flagged with limit 0 or without a previous reading")
	}
}

// walkFlags runs the walker over pts and returns their flags in order.
func walkFlags(l limits, pts []point) []result {
	w := walker{l: l}
	var out []result
	for _, p := range pts {
		if _, r, ok := w.push(p); ok {
			out = append(out, r)
		}
	}
	_, r, _ := w.finish()
	return append(out, r)
}

func TestFlatLineNeedsCountAndPeriod(t *testing.T) {
	t.Parallel()
	l := limits{QC: sensorhub.QC{FlatLine: sensorhub.FlatLine{Count: 3, Period: 10 * time.Minute, Tolerance: 0.05}}}
	flags := func(pts ...point) []int16 {
		var out []int16
		for _, r := range walkFlags(l, pts) {
			out = append(out, r.flag)
		}
		return out
	}
	cases := []struct {
		name string
		pts  []point
		want []int16
	}{
		{"three over ten minutes", []point{at(0, 99), at(5, 99), at(10, 99), at(11, 99)}, []int16{1, 1, 4, 4}},
		{"three over nine minutes", []point{at(0, 99), at(4.5, 99), at(9, 99)}, []int16{1, 1, 1}},
		{"two over twenty minutes", []point{at(0, 99), at(20, 99)}, []int16{1, 1}},
		{"within the tolerance of the one before", []point{at(0, 99), at(5, 99.04), at(10, 99.08)}, []int16{1, 1, 4}},
		{"a step beyond the tolerance restarts", []point{at(0, 99), at(5, 99), at(6, 99.1), at(10, 99.1)}, []int16{1, 1, 1, 1}},
		{"a gap beyond MaxGap restarts", []point{at(0, 99), at(5, 99), at(21, 99), at(25, 99)}, []int16{1, 1, 1, 1}},
	}
	for _, c := range cases {
		if got := flags(c.pts...); !slices.Equal(got, c.want) {
			t.Errorf("%s: flags %v, want %v", c.name, got, c.want)
		}
	}
}

func TestEvaluateTakesTheWorstTest(t *testing.T) {
	t.Parallel()
	l := limits{QC: sensorhub.QC{Climatology: sensorhub.AllYear(0, 20), Spike: 5, RateOfChange: 1}}
	prev, next := at(-1, 10), at(1, 10)
	cases := []struct {
		name   string
		p      point
		flag   int16
		tests  []string
		noNext bool
	}{
		{"pass", at(0, 10.5), 1, nil, false},
		{"climatology, spike and rate of change: the spike fails it", at(0, 25), 4, []string{"climatology", "spike", "rate_of_change"}, false},
		{"rate of change alone is suspect", at(0, 12), 3, []string{"rate_of_change"}, false},
		{"without a next neighbour no spike", at(0, 25), 3, []string{"climatology", "rate_of_change"}, true},
		{"manual suspect", point{Time: t0, Value: 10, manual: 3}, 3, []string{"manual"}, false},
		{"manual fail", point{Time: t0, Value: 10, manual: 4}, 4, []string{"manual"}, false},
	}
	for _, c := range cases {
		n := &next
		if c.noNext {
			n = nil
		}
		got := evaluate(l, &prev, c.p, n, extend(l, run{}, c.p), nil)
		if !got.equal(c.flag, c.tests) {
			t.Errorf("%s: %+v, want flag %d tests %v", c.name, got, c.flag, c.tests)
		}
	}
}

func TestFlatLineAtZeroNeedsTheCompanion(t *testing.T) {
	t.Parallel()
	l := limits{QC: sensorhub.QC{FlatLine: sensorhub.FlatLine{Count: 3, Period: 10 * time.Minute, Companion: "wind_gust"}}}
	gustAt := func(minutes float64) func(from, to time.Time) bool {
		g := t0.Add(time.Duration(minutes * float64(time.Minute)))
		return func(from, to time.Time) bool { return !g.Before(from) && !g.After(to) }
	}
	calm := []point{at(0, 0), at(5, 0), at(10, 0)}
	stuck := []point{at(0, 3.4), at(5, 3.4), at(10, 3.4)}
	cases := []struct {
		name      string
		pts       []point
		companion func(from, to time.Time) bool
		want      int16
	}{
		{"calm: zero without gusts", calm, nil, 1},
		{"stuck at zero while it gusts", calm, gustAt(7), 4},
		{"a gust at the run's first reading counts", calm, gustAt(0), 4},
		{"a gust after the run does not", calm, gustAt(11), 1},
		{"stuck above zero needs no gust", stuck, nil, 4},
	}
	for _, c := range cases {
		w := walker{l: l, companion: c.companion}
		for _, p := range c.pts {
			w.push(p)
		}
		if _, r, _ := w.finish(); r.flag != c.want {
			t.Errorf("%s: flag %d, want %d", c.name, r.flag, c.want)
		}
	}
}
