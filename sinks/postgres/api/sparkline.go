package api

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Sparkline geometry: the SVG's viewBox is sparkWidth × sparkHeight, and
// a day is drawn with at most sparkPoints points, each the mean of the
// 5-minute buckets of its half hour, on whole coordinates, so that a page
// of many sensors stays small.
const (
	sparkSpan   = 24 * time.Hour
	sparkPoints = 48
	sparkWidth  = 4 * (sparkPoints - 1)
	sparkHeight = 32
)

// sparklineSQL returns the 5-minute rollups of the day up to each series'
// newest reading ($3): a series that stopped reporting, or reports old
// data, still shows its last day. The value drawn is the bucket's mean,
// or its sum or last value for the sensor types that aggregate so.
const sparklineSQL = `
SELECT k.station, k.sensor, b.bucket, b.v
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(station, sensor, until)
CROSS JOIN LATERAL (
	SELECT r.bucket, coalesce(r.avg, r.sum, r.last) AS v
	FROM readings_5m r
	WHERE r.station = k.station AND r.sensor = k.sensor
	  AND r.bucket > k.until - interval '24 hours' AND r.bucket <= k.until
	ORDER BY r.bucket
) b
WHERE b.v IS NOT NULL`

// seriesKey names one series.
type seriesKey struct{ station, sensor string }

// sparkline is one series' day as an SVG polyline.
type sparkline struct {
	// Points is the polyline's points attribute: "x,y x,y …", y down.
	Points string
	// Min and Max are the range drawn, in the page's units.
	Min, Max float64
}

// sparklines returns the sparklines of the series keys, each ending at its
// until time, with values converted by conv (nil: as stored).
func (a *API) sparklines(ctx context.Context, keys []seriesKey, until []time.Time, conv func(seriesKey, float64) float64) (map[seriesKey]sparkline, error) {
	stations, sensors := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		stations[i], sensors[i] = k.station, k.sensor
	}
	rows, err := a.cfg.DB.Query(ctx, sparklineSQL, stations, sensors, until)
	if err != nil {
		return nil, fmt.Errorf("api: query sparklines: %w", err)
	}
	defer rows.Close()
	type point struct {
		at time.Time
		v  float64
	}
	series := map[seriesKey][]point{}
	for rows.Next() {
		var k seriesKey
		var p point
		if err := rows.Scan(&k.station, &k.sensor, &p.at, &p.v); err != nil {
			return nil, fmt.Errorf("api: read sparklines: %w", err)
		}
		series[k] = append(series[k], point{p.at, conv(k, p.v)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api: read sparklines: %w", err)
	}
	ends := make(map[seriesKey]time.Time, len(keys))
	for i, k := range keys {
		ends[k] = until[i]
	}
	out := make(map[seriesKey]sparkline, len(series))
	for k, pts := range series {
		start := ends[k].Add(-sparkSpan)
		var sums, counts [sparkPoints]float64
		for _, p := range pts {
			slot := int(float64(p.at.Sub(start)) / float64(sparkSpan) * sparkPoints)
			slot = min(max(slot, 0), sparkPoints-1)
			sums[slot] += p.v
			counts[slot]++
		}
		var means []float64
		var xs []int
		for i := range sparkPoints {
			if counts[i] > 0 {
				means = append(means, sums[i]/counts[i])
				xs = append(xs, i*sparkWidth/(sparkPoints-1))
			}
		}
		out[k] = draw(xs, means)
	}
	return out, nil
}

// draw scales values into the viewBox, the lowest at the bottom.
func draw(xs []int, values []float64) sparkline {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		lo, hi = min(lo, v), max(hi, v)
	}
	var b strings.Builder
	for i, v := range values {
		y := float64(sparkHeight) / 2
		if hi > lo {
			y = float64(sparkHeight-2) - (v-lo)/(hi-lo)*float64(sparkHeight-4)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(xs[i]))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 0, 64))
	}
	return sparkline{Points: b.String(), Min: lo, Max: hi}
}
