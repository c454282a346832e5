package derived

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// writeRainRates stores rain_rate at every rain reading of a station
// whose window ((t − W, t], W = Config.RainRateWindow) holds one of the
// changed rain times $4 (ranges [$2, $3] = [changed, changed + W)), and
// removes it at a changed time that holds no rain reading any more; the
// sums are taken in PostgreSQL, over the rain as stored now. Readings
// flagged fail are left out; a device-sent rain_rate is never replaced.
const writeRainRates = `WITH changed AS (
  SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS k(station, lo, hi)
), scope AS (
  SELECT DISTINCT p.station, p.ts
  FROM changed k JOIN readings p ON p.station = k.station AND p.sensor = 'rain' AND p.ts BETWEEN k.lo AND k.hi AND p.qc_flag <> 4
), rates AS (
  SELECT s.station, s.ts,
    (SELECT sum(r.value) FROM readings r WHERE r.station = s.station AND r.sensor = 'rain'
       AND r.ts > s.ts - $4::interval AND r.ts <= s.ts AND r.qc_flag <> 4) * $5::float8 AS value
  FROM scope s
), gone AS (
  DELETE FROM readings r USING changed k
  WHERE r.station = k.station AND r.sensor = 'rain_rate' AND r.ts = k.lo AND r.derived
    AND NOT EXISTS (SELECT FROM scope s WHERE s.station = k.station AND s.ts = k.lo)
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
// and the rain amounts decided from totals may change, in one statement,
// and returns what changed.
func (p *Processor) writeRainRates(ctx context.Context, tx pgx.Tx, touched []touch, decided []key) ([]change, error) {
	w := p.cfg.RainRateWindow
	var ws []window
	for _, t := range touched {
		if t.sensor == rain {
			ws = append(ws, window{station: t.station, sensor: rain, lo: t.at, hi: t.at + w.Microseconds() - 1})
		}
	}
	for _, k := range decided {
		ws = append(ws, window{station: k.station, sensor: rain, lo: k.at, hi: k.at + w.Microseconds() - 1})
	}
	if len(ws) == 0 {
		return nil, nil
	}
	// Not merged: each changed time is also a key whose rate may go.
	stations, _, los, his := columns(ws)
	perHour := float64(time.Hour) / float64(w)
	rows, err := tx.Query(ctx, writeRainRates, stations, los, his, w, perHour)
	if err != nil {
		return nil, fmt.Errorf("derived: store rain rates: %w", err)
	}
	changes, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return nil, fmt.Errorf("derived: store rain rates: %w", err)
	}
	return changes, nil
}
