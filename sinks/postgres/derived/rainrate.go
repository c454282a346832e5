package derived

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Rain rates, rain_rate at each rain reading t: the sum of the station's
// rain readings not flagged fail in (t − W, t], per hour. Sums are numeric
// (of the values to 15 significant digits, PostgreSQL's float8 to numeric):
// exact, so a sum does not depend on how it was added up, and every way
// below gives the same float8, total::float8 × (1 h / W).
//
// A rate is stored at a device's rain reading only once the sink has
// released the reading to the processor (see rainStep.released): a rate
// stored before would be computed again when the reading is released, and
// quality control flags a reading as it is released, which the processor is
// told (Series.Revised) when its own cursor passes the reading in that
// transaction, not if it passed earlier. Rain amounts computed from totals
// (derived) are not released by the rain cursor, and are always rated. A
// device-sent rain_rate is never replaced.
//
// The processor keeps, per station, the sum of the window ending at a time
// c (table rain_rate_totals, its running total) and computes the rates
// after c from it: the rate at t is the total, plus the rain in (c, t],
// minus the rain in (c − W, t − W], as stored now (writeRainRatesOn), two
// index range scans as long as the rain that arrived, whatever the window
// holds. That is the sum over (t − W, t] as long as the rain in
// (c − W, c] is what the total summed. Every change to stored rain
// reaches the processor, with its time, in the transaction that makes it
// (a released, late or revised reading, an amount computed from totals,
// Rebuild, FollowFlags), but a device's readings the sink has not
// released yet, which lie after c: c is never past the released rain. So
// a total is used only by a call all of whose changes lie after c
// (rainStep.runs); any other call sums the windows again
// (writeRainRates), and takes the total again or drops it. Both end with
// storeRates and ratesChanged. Both read each station's rain in a lateral
// subquery with OFFSET 0, one run of the primary key's index: as joins,
// PostgreSQL planned them as hash joins over a sequential scan of every
// partition, which took 114 ms a commit in a year of 2.3 million readings
// (TestReadingsAreReadByKey).
var (
	// writeRainRates stores rain_rate at every rain reading of a station in
	// the ranges [$2, $3] (each changed rain time t and the window after
	// it, [t, t + W), merged), and removes it at the changed times $5, $6
	// that hold no rain reading any more. A rate is the sum over (t − W, t]
	// ($4 = W − 1 µs, PostgreSQL's precision), per hour ($7), taken with a
	// window function over each range and the window before it: one pass
	// over the rain, however dense. The numeric sum's moving aggregate
	// takes out the row leaving the frame, linear in the rows, where float8
	// sum has no such inverse and adds up each row's whole frame again. A
	// device's rain is rated up to $9 (see rainStep.released), by station
	// $8.
	//
	// The station's running total is taken again at the latest of its
	// times $10, $11 that lies in one of its ranges, summed by the same
	// window function over the rain as it is now, and kept for the window
	// $12; a station with none there, or whose sum there is not finite,
	// keeps none.
	writeRainRates = `WITH ranges AS (
  SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS k(station, lo, hi, i)
), released AS (
  SELECT * FROM unnest($8::text[], $9::timestamptz[]) AS d(station, upto)
), marks AS (
  SELECT DISTINCT ON (m.station) k.i, m.station, m.ts, k.lo
  FROM unnest($10::text[], $11::timestamptz[]) AS m(station, ts)
  JOIN ranges k ON k.station = m.station AND m.ts BETWEEN k.lo AND k.hi
  ORDER BY m.station, m.ts DESC
), inputs AS (
  SELECT k.i, k.station, r.ts, r.derived, k.lo, r.value::numeric AS value, false AS mark
  FROM ranges k CROSS JOIN LATERAL (SELECT ts, derived, value FROM readings WHERE station = k.station AND sensor = 'rain'
    AND ts >= k.lo - $4::interval AND ts <= k.hi AND qc_flag <> 4 OFFSET 0) r
  UNION ALL
  SELECT i, station, ts, false, lo, 0, true FROM marks
), sums AS (
  SELECT i, station, ts, derived, lo, mark,
    sum(value) OVER (PARTITION BY i ORDER BY ts RANGE BETWEEN $4::interval PRECEDING AND CURRENT ROW) AS total
  FROM inputs
), rates AS (
  SELECT s.station, s.ts, s.total::float8 * $7::float8 AS value
  FROM sums s JOIN released d ON d.station = s.station
  WHERE NOT s.mark AND s.ts >= s.lo AND (s.derived OR s.ts <= d.upto)
` + storeRates("$5", "$6") + `, kept AS (
  INSERT INTO rain_rate_totals AS t (station, ts, window_size, total)
  SELECT station, ts, $12, total FROM sums WHERE mark AND total NOT IN ('NaN', 'Infinity', '-Infinity')
  ORDER BY station
  ON CONFLICT (station) DO UPDATE SET ts = excluded.ts, window_size = excluded.window_size, total = excluded.total
), dropped AS (
  DELETE FROM rain_rate_totals t USING (SELECT DISTINCT station FROM ranges) k
  WHERE t.station = k.station
    AND NOT EXISTS (SELECT FROM sums s WHERE s.mark AND s.station = k.station AND s.total NOT IN ('NaN', 'Infinity', '-Infinity'))
)
` + ratesChanged

	// writeRainRatesOn stores rain_rate at the rain readings of each
	// station $1 in (since $2, upto + W) ($4, $7 = W), those the new rain
	// in (since, upto] may change, from the running total $3 of the window
	// ending at since: the total, plus the rain entering the window (a
	// reading in (since, t]), minus the rain leaving it (a reading in
	// (since − W, t − W]), read as they are stored now: two index range
	// scans per station, of the rain after since and of as much a window
	// before. A device's rain is rated up to $5 (see rainStep.released).
	// The station's total is then taken at $6 and kept, or dropped when it
	// is not finite. It removes rain_rate at $9, $10 where no rain reading
	// is left.
	//
	// Sums are numeric, and a numeric sum counts NaN and infinities apart
	// (NaN with one of them, or with both infinities; else the infinity):
	// these are counted here alike, so that one that entered and left the
	// window leaves the finite sum as it was.
	writeRainRatesOn = `WITH k AS (
  SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
    WITH ORDINALITY AS k(station, since, total, upto, released, keep, i)
), entering AS (
  SELECT k.i, r.ts AS at, r.value, r.derived OR r.ts <= k.released AS rated
  FROM k CROSS JOIN LATERAL (SELECT ts, value, derived FROM readings WHERE station = k.station AND sensor = 'rain'
    AND ts > k.since AND ts < k.upto + $7::interval AND qc_flag <> 4 OFFSET 0) r
), reach AS (
  SELECT k.i, greatest(k.upto, max(e.at) FILTER (WHERE e.rated)) AS upto
  FROM k LEFT JOIN entering e USING (i) GROUP BY k.i, k.upto
), moves AS (
  SELECT i, at, value, 1 AS sign, rated, false AS keep FROM entering
  UNION ALL
  SELECT k.i, r.ts + $7::interval, r.value, -1, false, false
  FROM k JOIN reach USING (i) CROSS JOIN LATERAL (SELECT ts, value FROM readings WHERE station = k.station AND sensor = 'rain'
    AND ts > k.since - $7::interval AND ts <= reach.upto - $7::interval AND qc_flag <> 4 OFFSET 0) r
  UNION ALL
  SELECT i, keep, 0, 0, false, true FROM k
), running AS (
  SELECT i, at, rated, keep,
    sum(sign * CASE WHEN value IN ('NaN', 'Infinity', '-Infinity') THEN 0 ELSE value::numeric END) OVER w AS moved,
    sum(sign * (value = 'NaN')::int) OVER w AS nans,
    sum(sign * (value = 'Infinity')::int) OVER w AS highs,
    sum(sign * (value = '-Infinity')::int) OVER w AS lows
  FROM moves
  WINDOW w AS (PARTITION BY i ORDER BY at)
), totals AS (
  SELECT k.station, r.at, r.rated, r.keep,
    CASE WHEN r.nans > 0 OR r.highs > 0 AND r.lows > 0 THEN 'NaN'::numeric
         WHEN r.highs > 0 THEN 'Infinity'::numeric
         WHEN r.lows > 0 THEN '-Infinity'::numeric
         ELSE k.total::numeric + r.moved END AS total
  FROM running r JOIN k USING (i)
), rates AS (
  SELECT station, at AS ts, total::float8 * $8::float8 AS value FROM totals WHERE rated
` + storeRates("$9", "$10") + `, kept AS (
  INSERT INTO rain_rate_totals AS t (station, ts, window_size, total)
  SELECT station, at, $7, total FROM totals WHERE keep AND total NOT IN ('NaN', 'Infinity', '-Infinity')
  ORDER BY station
  ON CONFLICT (station) DO UPDATE SET ts = excluded.ts, window_size = excluded.window_size, total = excluded.total
), dropped AS (
  DELETE FROM rain_rate_totals t
  USING totals x WHERE x.keep AND t.station = x.station AND x.total IN ('NaN', 'Infinity', '-Infinity')
)
` + ratesChanged
)

// storeRates is the part of the rain-rate statements that writes the
// CTE rates (station, ts, value): the CTEs gone, which removes the
// computed rain_rate at the times in the parameters stations and times
// that no rate is computed at any more, and put, which stores each rate
// that changed; a device-sent rain_rate is never replaced. ratesChanged
// returns what they did.
func storeRates(stations, times string) string {
	return `), gone AS (
  DELETE FROM readings r USING unnest(` + stations + `::text[], ` + times + `::timestamptz[]) AS g(station, ts)
  WHERE r.station = g.station AND r.sensor = 'rain_rate' AND r.ts = g.ts AND r.derived
    AND NOT EXISTS (SELECT FROM rates x WHERE x.station = g.station AND x.ts = g.ts)
  RETURNING r.station, r.sensor, r.ts
), put AS (
  INSERT INTO readings AS r (station, sensor, ts, value, unit, derived)
  SELECT station, 'rain_rate', ts, value, 'mm/h', true FROM rates ORDER BY station, ts
  ON CONFLICT (station, sensor, ts) DO UPDATE SET value = excluded.value, unit = excluded.unit, received_at = now()
  WHERE r.derived AND (r.value, r.unit) IS DISTINCT FROM (excluded.value, excluded.unit)
  RETURNING r.station, r.sensor, r.ts, r.value, r.unit
)`
}

// ratesChanged ends the rain-rate statements: the rates stored and removed,
// as scanChange reads them.
const ratesChanged = `SELECT station, sensor, ts, value, unit FROM put
UNION ALL
SELECT station, sensor, ts, NULL, NULL FROM gone`

// carried is what the processor reads of a station's rain rates before
// it writes them (selectRainTotals).
type carried struct {
	// total is the running total kept for the window ending at at, as
	// numeric text; nil when none is kept for this window.
	total *string
	at    int64
	// released is how far the station's rain cursor released the
	// device's rain, its processed_until; nil without a cursor.
	released *int64
}

// rainStep is what one call changes of a station's rain.
type rainStep struct {
	times []int64 // every changed rain time
	// first and newest span the new rain: released readings and changed
	// amounts computed from totals; hasNew says there is some.
	first, newest int64
	hasNew        bool
	// newestReleased is the newest rain reading released to the
	// processor now, if hasReleased.
	newestReleased int64
	hasReleased    bool
	// other is a late or revised rain reading, or one Rebuild or
	// FollowFlags handed over: a change the running total cannot follow.
	other bool
	// amounts are the times of the changed amounts computed from totals.
	amounts []int64
}

func (s *rainStep) add(at int64) {
	s.times = append(s.times, at)
	if !s.hasNew {
		s.first, s.newest, s.hasNew = at, at, true
	}
	s.first, s.newest = min(s.first, at), max(s.newest, at)
}

// released is how far the station's device rain is released to the
// processor after this call, the rain it may rate: to the newest reading
// released now, else to the rain cursor, else (a station without one)
// every reading. A device's reading newer than that is stored before the
// sink hands it over: the running total is never taken past it, so that
// every change to the rain the total covers reaches the processor.
func (s *rainStep) released(t carried) int64 {
	switch {
	case s.hasReleased:
		return s.newestReleased
	case t.released != nil:
		return *t.released
	}
	return math.MaxInt64
}

// runs reports whether the station's rates can be computed from its
// running total t: nothing but new rain, all after the total's window,
// less than a window after it (else the window holds nothing of the
// total's: summing it is as cheap), and the total not past the released
// rain.
func (s *rainStep) runs(t carried, w int64) bool {
	return !s.other && s.hasNew && t.total != nil && t.at < s.first && s.first-t.at < w && t.at <= s.released(t)
}

// writeRainRates recomputes the rain rates that the touched rain readings
// and the rain amounts computed from totals that changed (rains) may
// change, and returns what changed: from the running total where it runs,
// by summing the windows again elsewhere; both statements in one round
// trip.
func (p *Processor) writeRainRates(ctx context.Context, tx pgx.Tx, d *data, touched []touch, rains []key) ([]change, error) {
	w := p.cfg.RainRateWindow
	steps := map[string]*rainStep{}
	step := func(station string) *rainStep {
		s := steps[station]
		if s == nil {
			s = &rainStep{}
			steps[station] = s
		}
		return s
	}
	for _, t := range touched {
		if t.sensor != rain {
			continue
		}
		s := step(t.station)
		if !t.released {
			s.times, s.other = append(s.times, t.at), true
			continue
		}
		s.add(t.at)
		if !s.hasReleased || t.at > s.newestReleased {
			s.newestReleased, s.hasReleased = t.at, true
		}
	}
	for _, k := range rains {
		s := step(k.station)
		s.add(k.at)
		s.amounts = append(s.amounts, k.at)
	}
	if len(steps) == 0 {
		return nil, nil
	}
	var (
		on  runArgs
		all sumArgs
	)
	for station, s := range steps {
		t := d.rain[station]
		released := timestamp(s.released(t))
		if s.runs(t, w.Microseconds()) {
			keep := min(s.newest, s.released(t))
			on.stations, on.since, on.totals = append(on.stations, station), append(on.since, time.UnixMicro(t.at)), append(on.totals, *t.total)
			on.upto, on.released, on.keep = append(on.upto, time.UnixMicro(s.newest)), append(on.released, released), append(on.keep, time.UnixMicro(keep))
			for _, at := range s.amounts {
				on.goneStations, on.goneTimes = append(on.goneStations, station), append(on.goneTimes, time.UnixMicro(at))
			}
			continue
		}
		for _, at := range s.times {
			all.ranges = append(all.ranges, window{station: station, sensor: rain, lo: at, hi: at + w.Microseconds() - 1})
			all.goneStations, all.goneTimes = append(all.goneStations, station), append(all.goneTimes, time.UnixMicro(at))
		}
		all.releasedStations, all.released = append(all.releasedStations, station), append(all.released, released)
		if s.hasNew {
			all.markStations, all.marks = append(all.markStations, station), append(all.marks, time.UnixMicro(min(s.newest, s.released(t))))
		}
		if t.total != nil && t.at <= s.released(t) {
			all.markStations, all.marks = append(all.markStations, station), append(all.marks, time.UnixMicro(t.at))
		}
	}
	perHour := float64(time.Hour) / float64(w)
	var changes []change
	collect := func(rows pgx.Rows) error {
		cs, err := pgx.CollectRows(rows, scanChange)
		changes = append(changes, cs...)
		return err
	}
	b := &pgx.Batch{}
	if len(on.stations) > 0 {
		b.Queue(writeRainRatesOn, on.stations, on.since, on.totals, on.upto, on.released, on.keep, w, perHour,
			on.goneStations, on.goneTimes).Query(collect)
	}
	if len(all.ranges) > 0 {
		stations, _, los, his := columns(merge(all.ranges, 0))
		b.Queue(writeRainRates, stations, los, his, w-time.Microsecond, all.goneStations, all.goneTimes, perHour,
			all.releasedStations, all.released, all.markStations, all.marks, w).Query(collect)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("derived: store rain rates: %w", err)
	}
	return changes, nil
}

// runArgs are writeRainRatesOn's arguments.
type runArgs struct {
	stations, totals  []string
	since, upto, keep []time.Time
	released          []pgtype.Timestamptz
	goneStations      []string
	goneTimes         []time.Time
}

// sumArgs are writeRainRates' arguments.
type sumArgs struct {
	ranges           []window
	goneStations     []string
	goneTimes        []time.Time
	releasedStations []string
	released         []pgtype.Timestamptz
	markStations     []string
	marks            []time.Time
}

// timestamp returns µs as a timestamptz, math.MaxInt64 as infinity.
func timestamp(at int64) pgtype.Timestamptz {
	if at == math.MaxInt64 {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: time.UnixMicro(at), Valid: true}
}
