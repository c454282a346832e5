package derived

import (
	"cmp"
	"context"
	"slices"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub/units"
	"github.com/sensorhub/sensorhub/sensorhub/weather"
)

// touch is a stored reading whose value or flag is new to the processor:
// an input of the derived values near it.
type touch struct {
	station, sensor string
	at              int64 // device time, µs since the Unix epoch (PostgreSQL's precision)
}

// key is a derived reading's natural key.
type key struct {
	station, sensor string
	at              int64
}

// result is the recomputed value under a key: ok false means none, and a
// derived row stored under the key is removed.
type result struct {
	value float64
	unit  string
	ok    bool
}

// point is a stored reading of a series in the fetched data.
type point struct {
	at    int64
	value float64
}

// series is a station's sensor type's points in device-time order.
type series []point

func abs(x int64) int64 { return max(x, -x) }

// data is what the queries read: by station, the running totals fetched
// (under [station, "rain_total"]); and the stations' elevations.
type data struct {
	points    map[[2]string]series
	elevation map[string]float64
}

// add merges points of one series, keeping device-time order and one
// point per time.
func (d *data) add(station, sensor string, ps []point) {
	k := [2]string{station, sensor}
	s := append(d.points[k], ps...)
	slices.SortFunc(s, func(a, b point) int { return cmp.Compare(a.at, b.at) })
	d.points[k] = slices.CompactFunc(s, func(a, b point) bool { return a.at == b.at })
}

// recompute recomputes, from the table, the derived values whose inputs
// are touched, writes what changed and returns it.
func (p *Processor) recompute(ctx context.Context, tx pgx.Tx, touched []touch) ([]change, error) {
	if len(touched) == 0 {
		return nil, nil
	}
	d := &data{points: map[[2]string]series{}, elevation: map[string]float64{}}
	partners := p.partnerRanges(touched)
	found := make([]neighbours, len(partners))
	if err := p.fetch(ctx, tx, d, touched, partners, found, totalsWindows(touched, p.cfg.RainTotalGap)); err != nil {
		return nil, err
	}
	primaries, err := p.fetchPrimaries(ctx, tx, p.scopeRanges(touched, partners, found))
	if err != nil {
		return nil, err
	}
	results := map[key]result{}
	p.pair(d, touched, primaries, results)
	rains := p.rainFromTotals(d, touched, results)
	changes, err := write(ctx, tx, results)
	if err != nil {
		return nil, err
	}
	// Rain rates read the rain as just written.
	rates, err := p.writeRainRates(ctx, tx, touched, rains)
	if err != nil {
		return nil, err
	}
	return slices.Concat(changes, rates), nil
}

// rainFromTotals computes the rain amounts of the running totals near the
// touched ones and returns the rain keys it decided.
//
// A total's amount depends on up to two totals before it (the one before
// may be a glitch, then the one before that counts) and the one after it
// (which tells whether it is a glitch); so a touched total changes the
// amounts of the total before it and of two after it, and the fetched
// neighbourhood (three before, four after) holds everything they need.
func (p *Processor) rainFromTotals(d *data, touched []touch, results map[key]result) []key {
	gap := p.cfg.RainTotalGap.Microseconds()
	var decided []key
	for _, t := range touched {
		if t.sensor != rainTotal {
			continue
		}
		s := d.points[[2]string{t.station, rainTotal}]
		pos := sort.Search(len(s), func(i int) bool { return s[i].at >= t.at })
		scope := []int64{t.at}
		for i := max(pos-1, 0); i <= min(pos+2, len(s)-1); i++ {
			scope = append(scope, s[i].at)
		}
		for _, at := range scope {
			k := key{t.station, rain, at}
			if _, done := results[k]; done {
				continue
			}
			i, found := sort.Find(len(s), func(i int) int { return cmp.Compare(at, s[i].at) })
			var r result
			if found {
				r.value, r.ok = rainAt(s, i, gap)
			}
			r.unit = units.Millimetre
			results[k] = r
			decided = append(decided, k)
		}
	}
	return decided
}

// rainAt returns the rain amount at total i of s (see weather.RainAmount):
// none for a glitch, the first total, or one after a silence longer than
// gap.
func rainAt(s series, i int, gap int64) (float64, bool) {
	if glitch(s, i, gap) {
		return 0, false
	}
	j := i - 1
	if j >= 0 && glitch(s, j, gap) {
		j--
	}
	if j < 0 || s[i].at-s[j].at > gap {
		return 0, false
	}
	return weather.RainAmount(s[j].value, s[i].value), true
}

// glitch reports whether total i is a glitch: a drop from the total before
// it that the total right after it undoes, all within gap.
func glitch(s series, i int, gap int64) bool {
	if i < 1 || i+1 >= len(s) || s[i].at-s[i-1].at > gap || s[i+1].at-s[i].at > gap {
		return false
	}
	return weather.RainGlitch(s[i-1].value, s[i].value, s[i+1].value)
}
