package derived

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The queries of the pairing quantities. Readings flagged fail
// (qc_flag 4) are left out, as if never stored.
const (
	// selectNeighbours finds, for each range of touched partner readings,
	// the nearest reading of the series before it and after it, within
	// $5 (two tolerances): the primaries whose nearest partner may have
	// changed lie between those and the range (see scopeRanges).
	selectNeighbours = `SELECT k.i, b.ts, a.ts
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS k(station, sensor, lo, hi, i)
LEFT JOIN LATERAL (SELECT ts FROM readings WHERE station = k.station AND sensor = k.sensor
  AND ts < k.lo AND ts >= k.lo - $5::interval AND qc_flag <> 4 ORDER BY ts DESC LIMIT 1) AS b ON true
LEFT JOIN LATERAL (SELECT ts FROM readings WHERE station = k.station AND sensor = k.sensor
  AND ts > k.hi AND ts <= k.hi + $5::interval AND qc_flag <> 4 ORDER BY ts LIMIT 1) AS a ON true`

	// selectPrimaries reads the primary readings in each range, by the
	// range's ordinal.
	//
	// Each range is one run of the primary key's index: the lateral
	// subquery with OFFSET 0 is never flattened into a join, which
	// PostgreSQL planned, for 58 ranges in a year of 2.3 million readings,
	// as a hash join over a sequential scan of every partition (1.7 s a
	// commit).
	selectPrimaries = `SELECT k.i, p.ts, p.value
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS k(station, sensor, lo, hi, i)
CROSS JOIN LATERAL (SELECT ts, value FROM readings
  WHERE station = k.station AND sensor = k.sensor AND ts BETWEEN k.lo AND k.hi AND qc_flag <> 4 OFFSET 0) AS p`

	// selectPartners reads, by the range's ordinal, the partner readings
	// in each range and the nearest before and after it within the
	// tolerance ($5): among them is the nearest partner of every primary
	// in the range: a run of the index and two probes per range and
	// partner type. Probing before and after each primary instead took two
	// probes per primary and partner type: for 16 s of 5 stations'
	// temperatures and pressures, sent every second, 5–10 ms instead of
	// 0.9 ms for this and selectPrimaries together.
	selectPartners = `SELECT k.i, n.ts, n.value
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS k(station, sensor, lo, hi, i)
CROSS JOIN LATERAL (
  (SELECT ts, value FROM readings WHERE station = k.station AND sensor = k.sensor
    AND ts < k.lo AND ts >= k.lo - $5::interval AND qc_flag <> 4 ORDER BY ts DESC LIMIT 1)
  UNION ALL
  (SELECT ts, value FROM readings WHERE station = k.station AND sensor = k.sensor
    AND ts BETWEEN k.lo AND k.hi AND qc_flag <> 4 OFFSET 0)
  UNION ALL
  (SELECT ts, value FROM readings WHERE station = k.station AND sensor = k.sensor
    AND ts > k.hi AND ts <= k.hi + $5::interval AND qc_flag <> 4 ORDER BY ts LIMIT 1)
) AS n`
)

// primary is a primary reading with the nearest reading of each partner
// type within the tolerance.
type primary struct {
	value    float64
	partners map[string]point
}

// partnerRanges returns the ranges of touched partner readings, per series,
// those within a tolerance of each other merged.
func (p *Processor) partnerRanges(touched []touch) []window {
	var ws []window
	for _, t := range touched {
		if p.partnerOf[t.sensor] != nil {
			ws = append(ws, window{station: t.station, sensor: t.sensor, lo: t.at, hi: t.at})
		}
	}
	return merge(ws, p.cfg.Tolerance.Microseconds())
}

// neighbours is what selectNeighbours found for a range: the nearest
// partner readings outside it, if any within two tolerances.
type neighbours struct{ before, after *int64 }

// queueNeighbours adds selectNeighbours for ranges to b; their
// neighbours land in out, in the order of ranges.
func (p *Processor) queueNeighbours(b *pgx.Batch, ranges []window, out []neighbours) {
	if len(ranges) == 0 {
		return
	}
	stations, sensors, los, his := columns(ranges)
	b.Queue(selectNeighbours, stations, sensors, los, his, 2*p.cfg.Tolerance).Query(func(rows pgx.Rows) error {
		var (
			i             int64
			before, after *time.Time
		)
		_, err := pgx.ForEachRow(rows, []any{&i, &before, &after}, func() error {
			if before != nil {
				out[i-1].before = new(before.UnixMicro())
			}
			if after != nil {
				out[i-1].after = new(after.UnixMicro())
			}
			return nil
		})
		return err
	})
}

// scopeRanges returns the ranges of primary readings whose derived values
// the touched readings may change: each touched primary, and for a range
// [lo, hi] of touched partners, the primaries that are nearer to some
// reading in it than to its neighbours outside (b, a), within the
// tolerance: [max(lo − tol, (b + lo)/2), min(hi + tol, (hi + a)/2)]. Taking
// every reading in the range as touched only widens this, and a primary
// whose nearest partner was or is a touched reading lies in it: its
// nearest is then nearer than b and a.
func (p *Processor) scopeRanges(touched []touch, ranges []window, found []neighbours) []window {
	tol := p.cfg.Tolerance.Microseconds()
	var ws []window
	for _, t := range touched {
		if p.partnersOf[t.sensor] != nil {
			ws = append(ws, window{station: t.station, sensor: t.sensor, lo: t.at, hi: t.at})
		}
	}
	for i, r := range ranges {
		lo, hi := r.lo-tol, r.hi+tol
		if b := found[i].before; b != nil {
			lo = max(lo, *b+(r.lo-*b)/2)
		}
		if a := found[i].after; a != nil {
			hi = min(hi, r.hi+(*a-r.hi+1)/2)
		}
		for _, primary := range p.partnerOf[r.sensor] {
			ws = append(ws, window{station: r.station, sensor: primary, lo: lo, hi: hi})
		}
	}
	return merge(ws, 0)
}

// fetchPrimaries reads the primaries in ranges with their nearest
// partners, in one round trip.
func (p *Processor) fetchPrimaries(ctx context.Context, tx pgx.Tx, ranges []window) (map[key]primary, error) {
	out := map[key]primary{}
	if len(ranges) == 0 {
		return out, nil
	}
	var (
		b        = &pgx.Batch{}
		read     = make([]series, len(ranges))
		partners = p.partnerWindows(ranges)
		near     = map[[2]string]series{}
	)
	stations, sensors, los, his := columns(ranges)
	b.Queue(selectPrimaries, stations, sensors, los, his).Query(func(rows pgx.Rows) error {
		return scanPoints(rows, func(i int, pt point) { read[i] = append(read[i], pt) })
	})
	if len(partners) > 0 {
		stations, sensors, los, his := columns(partners)
		b.Queue(selectPartners, stations, sensors, los, his, p.cfg.Tolerance).Query(func(rows pgx.Rows) error {
			return scanPoints(rows, func(i int, pt point) {
				k := [2]string{partners[i].station, partners[i].sensor}
				near[k] = append(near[k], pt)
			})
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("derived: read primaries: %w", err)
	}
	// Windows of a series are disjoint, but the readings just outside one
	// may lie in the next.
	for k, s := range near {
		near[k] = s.sorted()
	}
	tol := p.cfg.Tolerance.Microseconds()
	for i, r := range ranges {
		for _, pt := range read[i] {
			pr := primary{value: pt.value, partners: map[string]point{}}
			for _, s := range p.partnersOf[r.sensor] {
				if c, ok := near[[2]string{r.station, s}].nearest(pt.at, tol); ok {
					pr.partners[s] = c
				}
			}
			out[key{r.station, r.sensor, pt.at}] = pr
		}
	}
	return out, nil
}

// partnerWindows returns the ranges of the partner readings to read for
// the primaries in ranges: the same times, in each of their partner types.
func (p *Processor) partnerWindows(ranges []window) []window {
	var ws []window
	for _, r := range ranges {
		for _, s := range p.partnersOf[r.sensor] {
			ws = append(ws, window{station: r.station, sensor: s, lo: r.lo, hi: r.hi})
		}
	}
	return merge(ws, 0)
}

// scanPoints hands each row of (ordinal from 1, ts, value) to add, with
// the ordinal made an index from 0.
func scanPoints(rows pgx.Rows, add func(i int, pt point)) error {
	var (
		i     int64
		ts    time.Time
		value float64
	)
	_, err := pgx.ForEachRow(rows, []any{&i, &ts, &value}, func() error {
		add(int(i-1), point{at: ts.UnixMicro(), value: value})
		return nil
	})
	return err
}

// nearest returns the point of s (in device-time order) nearest to at,
// within tol of it; of two as near, the earlier.
func (s series) nearest(at, tol int64) (point, bool) {
	i, exact := slices.BinarySearchFunc(s, at, func(p point, at int64) int { return cmp.Compare(p.at, at) })
	if exact {
		return s[i], true
	}
	var (
		best  point
		found bool
	)
	if i > 0 && at-s[i-1].at <= tol {
		best, found = s[i-1], true
	}
	if i < len(s) && s[i].at-at <= tol && (!found || s[i].at-at < at-best.at) {
		best, found = s[i], true
	}
	return best, found
}

// pair computes the pairing quantities of the primaries read, and marks
// for removal those of touched primaries that are not there (flagged
// fail).
func (p *Processor) pair(d *data, touched []touch, primaries map[key]primary, results map[key]result) {
	for _, t := range touched {
		for _, q := range p.cfg.Quantities {
			if q.Primary == t.sensor {
				results[key{t.station, q.Name, t.at}] = result{unit: q.Unit}
			}
		}
	}
	for k, pr := range primaries {
		for _, q := range p.cfg.Quantities {
			if q.Primary != k.sensor {
				continue
			}
			v, ok := compute(d, q, k.station, pr)
			results[key{k.station, q.Name, k.at}] = result{value: v, unit: q.Unit, ok: ok}
		}
	}
}

// compute returns q of a primary reading with its partners.
func compute(d *data, q Quantity, station string, pr primary) (float64, bool) {
	in := Inputs{Values: map[string]float64{q.Primary: pr.value}}
	if q.Elevation {
		var ok bool
		if in.ElevationM, ok = d.elevation[station]; !ok {
			return 0, false
		}
	}
	for _, s := range q.Partners {
		partner, ok := pr.partners[s]
		if !ok {
			return 0, false
		}
		in.Values[s] = partner.value
	}
	for _, s := range q.Optional {
		if partner, ok := pr.partners[s]; ok {
			in.Values[s] = partner.value
		}
	}
	return q.Compute(in)
}

// indexInputs fills p.partnerOf (primary types by partner type) and
// p.partnersOf (partner types by primary type) from the quantities.
func (p *Processor) indexInputs() {
	p.partnerOf, p.partnersOf = map[string][]string{}, map[string][]string{}
	for _, q := range p.cfg.Quantities {
		for _, s := range slices.Concat(q.Partners, q.Optional) {
			if !slices.Contains(p.partnerOf[s], q.Primary) {
				p.partnerOf[s] = append(p.partnerOf[s], q.Primary)
			}
			if !slices.Contains(p.partnersOf[q.Primary], s) {
				p.partnersOf[q.Primary] = append(p.partnersOf[q.Primary], s)
			}
		}
		if p.partnersOf[q.Primary] == nil {
			p.partnersOf[q.Primary] = []string{}
		}
	}
}
