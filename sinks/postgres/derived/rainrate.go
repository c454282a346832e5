package derived

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// writeRainRates stores rain_rate at every rain reading of a station in
// the ranges [$2, $3] (each changed rain time t and the window after it,
// [t, t + W), merged), and removes it at the changed times $5, $6 that hold
// no rain reading any more. A rate is the sum of the station's rain in
// (t − W, t] ($4 = W − 1 µs, PostgreSQL's precision), per hour ($7), taken
// in PostgreSQL with a window function over each range and the window
// before it: one pass over the rain, however dense. The sum is numeric
// (of the values to 15 significant digits, PostgreSQL's float8 to numeric),
// whose moving aggregate takes out the row leaving the frame, linear in the
// rows, where float8 sum has no such inverse and adds up each row's whole
// frame again; being exact, it does not depend on the rows before the
// frame. Readings flagged fail are left out; a device-sent rain_rate is
// never replaced.
//
// A rate is stored at a device's rain reading only once the sink has
// released the reading to the processor: up to $9, the newest rain reading
// released in this transaction, for the stations $8; else up to the
// station's rain cursor (table processor_cursors, processor $10); at every
// reading of a station without one. A rate stored before would be computed
// again when the reading is released, and quality control flags a reading
// as it is released: the processor is told (Series.Revised) when its own
// cursor passes the reading in that transaction, not if it passed earlier.
// Rain amounts computed from totals (derived) are not released by the rain
// cursor, and are always rated.
const writeRainRates = `WITH ranges AS (
  SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS k(station, lo, hi, i)
), released AS (
  SELECT k.station, coalesce(s.upto, c.processed_until, 'infinity') AS upto
  FROM (SELECT DISTINCT station FROM ranges) k
  LEFT JOIN unnest($8::text[], $9::timestamptz[]) AS s(station, upto) ON s.station = k.station
  LEFT JOIN processor_cursors c ON c.processor = $10 AND c.station = k.station AND c.sensor = 'rain'
), sums AS (
  SELECT k.i, r.station, r.ts, r.derived, k.lo,
    sum(r.value::numeric) OVER (PARTITION BY k.i ORDER BY r.ts RANGE BETWEEN $4::interval PRECEDING AND CURRENT ROW) AS total
  FROM ranges k JOIN readings r ON r.station = k.station AND r.sensor = 'rain'
    AND r.ts >= k.lo - $4::interval AND r.ts <= k.hi AND r.qc_flag <> 4
), rates AS (
  SELECT s.station, s.ts, s.total::float8 * $7::float8 AS value
  FROM sums s JOIN released d ON d.station = s.station
  WHERE s.ts >= s.lo AND (s.derived OR s.ts <= d.upto)
), gone AS (
  DELETE FROM readings r USING unnest($5::text[], $6::timestamptz[]) AS g(station, ts)
  WHERE r.station = g.station AND r.sensor = 'rain_rate' AND r.ts = g.ts AND r.derived
    AND NOT EXISTS (SELECT FROM rates x WHERE x.station = g.station AND x.ts = g.ts)
  RETURNING r.station, r.sensor, r.ts
), put AS (
  INSERT INTO readings AS r (station, sensor, ts, value, unit, derived)
  SELECT station, 'rain_rate', ts, value, 'mm/h', true FROM rates ORDER BY station, ts
  ON CONFLICT (station, sensor, ts) DO UPDATE SET value = excluded.value, unit = excluded.unit, received_at = now()
  WHERE r.derived AND (r.value, r.unit) IS DISTINCT FROM (excluded.value, excluded.unit)
  RETURNING r.station, r.sensor, r.ts, r.value, r.unit
)
SELECT station, sensor, ts, value, unit FROM put
UNION ALL
SELECT station, sensor, ts, NULL, NULL FROM gone`

// writeRainRates recomputes the rain rates that the touched rain readings
// and the rain amounts computed from totals that changed (rains) may
// change, in one statement, and returns what changed.
func (p *Processor) writeRainRates(ctx context.Context, tx pgx.Tx, touched []touch, rains []key) ([]change, error) {
	w := p.cfg.RainRateWindow
	var (
		ws           []window
		goneStations []string
		goneTimes    []time.Time
	)
	add := func(station string, at int64) {
		ws = append(ws, window{station: station, sensor: rain, lo: at, hi: at + w.Microseconds() - 1})
		goneStations, goneTimes = append(goneStations, station), append(goneTimes, time.UnixMicro(at))
	}
	released := map[string]int64{} // the newest rain reading released, by station
	for _, t := range touched {
		if t.sensor == rain {
			add(t.station, t.at)
			if t.released {
				released[t.station] = max(released[t.station], t.at)
			}
		}
	}
	for _, k := range rains {
		add(k.station, k.at)
	}
	if len(ws) == 0 {
		return nil, nil
	}
	stations, _, los, his := columns(merge(ws, 0))
	var (
		releasedStations []string
		releasedUpto     []time.Time
	)
	for station, at := range released {
		releasedStations, releasedUpto = append(releasedStations, station), append(releasedUpto, time.UnixMicro(at))
	}
	perHour := float64(time.Hour) / float64(w)
	rows, err := tx.Query(ctx, writeRainRates, stations, los, his, w-time.Microsecond, goneStations, goneTimes, perHour,
		releasedStations, releasedUpto, Name)
	if err != nil {
		return nil, fmt.Errorf("derived: store rain rates: %w", err)
	}
	changes, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return nil, fmt.Errorf("derived: store rain rates: %w", err)
	}
	return changes, nil
}
