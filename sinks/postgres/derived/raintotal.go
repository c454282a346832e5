package derived

import (
	"cmp"
	"sort"

	"github.com/sensorhub/sensorhub/sensorhub/units"
	"github.com/sensorhub/sensorhub/sensorhub/weather"
)

// rainFromTotals computes the rain amounts of the running totals near the
// touched ones into results.
//
// A total's amount depends on up to two totals before it (the one before
// may be a glitch, then the one before that counts) and the one after it
// (which tells whether it is a glitch); so a touched total changes the
// amounts of the total before it and of two after it, and the fetched
// neighbourhood (three before, four after) holds everything they need.
func (p *Processor) rainFromTotals(d *data, touched []touch, results map[key]result) {
	gap := p.cfg.RainTotalGap.Microseconds()
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
		}
	}
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
