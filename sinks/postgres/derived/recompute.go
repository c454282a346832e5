package derived

import (
	"cmp"
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// touch is a stored reading whose value or flag is new to the processor:
// an input of the derived values near it.
type touch struct {
	station, sensor string
	at              int64 // device time, µs since the Unix epoch (PostgreSQL's precision)
	// released is true for a reading the sink released to the processor
	// in this transaction (Series.Readings), false for a late or revised
	// one, or one that Rebuild or FollowFlags hands over.
	released bool
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

// data is what the queries read: by station, the running totals fetched
// (under [station, "rain_total"]); the stations' elevations; and what the
// rain rates start from.
type data struct {
	points    map[[2]string]series
	elevation map[string]float64
	rain      map[string]carried
}

// sorted returns s in device-time order with one point per time.
func (s series) sorted() series {
	slices.SortFunc(s, func(a, b point) int { return cmp.Compare(a.at, b.at) })
	return slices.CompactFunc(s, func(a, b point) bool { return a.at == b.at })
}

// add merges points of one series, keeping device-time order and one
// point per time.
func (d *data) add(station, sensor string, ps []point) {
	k := [2]string{station, sensor}
	d.points[k] = append(d.points[k], ps...).sorted()
}

// recompute recomputes, from the table, the derived values whose inputs
// are touched, writes what changed and returns it.
func (p *Processor) recompute(ctx context.Context, tx pgx.Tx, touched []touch) ([]change, error) {
	if len(touched) == 0 {
		return nil, nil
	}
	d := &data{points: map[[2]string]series{}, elevation: map[string]float64{}, rain: map[string]carried{}}
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
	p.rainFromTotals(d, touched, results)
	changes, err := write(ctx, tx, results)
	if err != nil {
		return nil, err
	}
	// Rain rates read the rain as just written. An amount written as it
	// was stored (or not written: a device's amount is there) changes no
	// rate: the rates follow the rain rows that changed.
	var rains []key
	for _, c := range changes {
		if c.sensor == rain {
			rains = append(rains, key{c.station, rain, c.ts.UnixMicro()})
		}
	}
	rates, err := p.writeRainRates(ctx, tx, d, touched, rains)
	if err != nil {
		return nil, err
	}
	return slices.Concat(changes, rates), nil
}
