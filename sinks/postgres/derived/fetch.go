package derived

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The queries that read the inputs. Readings flagged fail (qc_flag 4,
// DESIGN.md §12) are left out, as if never stored.
const (
	// selectTotals reads each station's running totals in [lo, hi] and
	// its three before and four after, the neighbours whose amounts they
	// change (see rainFromTotals).
	selectTotals = `SELECT k.station, n.ts, n.value
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS k(station, lo, hi)
CROSS JOIN LATERAL (
  (SELECT ts, value FROM readings WHERE station = k.station AND sensor = 'rain_total' AND ts < k.lo AND qc_flag <> 4 ORDER BY ts DESC LIMIT 3)
  UNION ALL
  (SELECT ts, value FROM readings WHERE station = k.station AND sensor = 'rain_total' AND ts BETWEEN k.lo AND k.hi AND qc_flag <> 4)
  UNION ALL
  (SELECT ts, value FROM readings WHERE station = k.station AND sensor = 'rain_total' AND ts > k.hi AND qc_flag <> 4 ORDER BY ts LIMIT 4)
) AS n`

	selectElevations = `SELECT id, elevation_m FROM stations WHERE id = ANY($1::text[]) AND elevation_m IS NOT NULL`

	// selectRainTotals reads, for each station $1, the running total of
	// its rain rate kept for the window $2 (see writeRainRates), and how
	// far its rain cursor (processor $3) has released the device's rain.
	// The lateral subqueries with OFFSET 0 keep each a lookup in the
	// primary key: joined, a young table's statistics drew a scan of every
	// rain cursor for each station (5 ms for 77 stations of 1,000).
	selectRainTotals = `SELECT k.station, t.ts, t.total::text, c.processed_until
FROM unnest($1::text[]) AS k(station)
LEFT JOIN LATERAL (
  SELECT ts, total FROM rain_rate_totals WHERE station = k.station AND window_size = $2 OFFSET 0) t ON true
LEFT JOIN LATERAL (
  SELECT processed_until FROM processor_cursors WHERE processor = $3 AND station = k.station AND sensor = 'rain' OFFSET 0) c ON true`
)

// window is a range of device times [lo, hi] of a series to read.
type window struct {
	station, sensor string
	lo, hi          int64
}

// merge sorts ws and merges those of one series that overlap or lie
// within slack of each other.
func merge(ws []window, slack int64) []window {
	slices.SortFunc(ws, func(a, b window) int {
		return cmp.Or(cmp.Compare(a.station, b.station), cmp.Compare(a.sensor, b.sensor), cmp.Compare(a.lo, b.lo))
	})
	var out []window
	for _, w := range ws {
		if n := len(out); n > 0 && out[n-1].station == w.station && out[n-1].sensor == w.sensor && w.lo <= out[n-1].hi+slack {
			out[n-1].hi = max(out[n-1].hi, w.hi)
			continue
		}
		out = append(out, w)
	}
	return out
}

// totalsWindows returns, per station, the ranges of its touched running
// totals, those less than gap apart merged.
func totalsWindows(touched []touch, gap time.Duration) []window {
	var ws []window
	for _, t := range touched {
		if t.sensor == rainTotal {
			ws = append(ws, window{station: t.station, sensor: rainTotal, lo: t.at, hi: t.at})
		}
	}
	return merge(ws, gap.Microseconds())
}

// fetch reads, in one round trip, into d: the totals' neighbourhoods, the
// elevations of the touched stations and the rain rates' running totals of
// those whose rain may change; and into found the neighbours of the
// partner ranges.
func (p *Processor) fetch(ctx context.Context, tx pgx.Tx, d *data, touched []touch, partners []window, found []neighbours, totals []window) error {
	b := &pgx.Batch{}
	p.queueNeighbours(b, partners, found)
	if len(totals) > 0 {
		stations, _, los, his := columns(totals)
		b.Queue(selectTotals, stations, los, his).Query(func(rows pgx.Rows) error {
			var (
				station   string
				ts        time.Time
				pt        point
				byStation = map[string][]point{}
			)
			_, err := pgx.ForEachRow(rows, []any{&station, &ts, &pt.value}, func() error {
				pt.at = ts.UnixMicro()
				byStation[station] = append(byStation[station], pt)
				return nil
			})
			for station, ps := range byStation {
				d.add(station, rainTotal, ps)
			}
			return err
		})
	}
	if stations := p.elevationStations(touched); len(stations) > 0 {
		b.Queue(selectElevations, stations).Query(func(rows pgx.Rows) error {
			var (
				station string
				m       float64
			)
			_, err := pgx.ForEachRow(rows, []any{&station, &m}, func() error {
				d.elevation[station] = m
				return nil
			})
			return err
		})
	}
	if stations := rainStations(touched); len(stations) > 0 {
		b.Queue(selectRainTotals, stations, p.cfg.RainRateWindow, Name).Query(func(rows pgx.Rows) error {
			var (
				station  string
				at       *time.Time
				total    *string
				released *time.Time
			)
			_, err := pgx.ForEachRow(rows, []any{&station, &at, &total, &released}, func() error {
				var t carried
				if at != nil {
					t.total, t.at = total, at.UnixMicro()
				}
				if released != nil {
					t.released = new(released.UnixMicro())
				}
				d.rain[station] = t
				return nil
			})
			return err
		})
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("derived: read inputs: %w", err)
	}
	return nil
}

// elevationStations returns the stations of touched when a quantity
// needs elevations.
func (p *Processor) elevationStations(touched []touch) []string {
	if !slices.ContainsFunc(p.cfg.Quantities, func(q Quantity) bool { return q.Elevation }) {
		return nil
	}
	var stations []string
	for _, t := range touched {
		stations = append(stations, t.station)
	}
	slices.Sort(stations)
	return slices.Compact(stations)
}

// rainStations returns the stations of touched whose rain may change:
// those with a rain reading or a running total touched.
func rainStations(touched []touch) []string {
	var stations []string
	for _, t := range touched {
		if t.sensor == rain || t.sensor == rainTotal {
			stations = append(stations, t.station)
		}
	}
	slices.Sort(stations)
	return slices.Compact(stations)
}

// columns turns windows into the array parameters of the queries.
func columns(ws []window) (stations, sensors []string, los, his []time.Time) {
	for _, w := range ws {
		stations, sensors = append(stations, w.station), append(sensors, w.sensor)
		los, his = append(los, time.UnixMicro(w.lo)), append(his, time.UnixMicro(w.hi))
	}
	return stations, sensors, los, his
}
