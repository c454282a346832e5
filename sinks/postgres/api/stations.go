package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Station statuses. Part of the API contract.
const (
	statusOK    = "ok"
	statusStale = "stale"
)

// station is a station with its latest readings, as the API answers it.
type station struct {
	ID         string    `json:"id"`
	Name       *string   `json:"name"`
	Latitude   *float64  `json:"latitude"`
	Longitude  *float64  `json:"longitude"`
	ElevationM *float64  `json:"elevation_m"`
	Timezone   *string   `json:"timezone"`
	CreatedAt  time.Time `json:"created_at"`
	// Status is statusStale when one of its sensors is stale (known only
	// while staleness is on), else statusOK.
	Status string   `json:"status"`
	Latest []latest `json:"latest"`
}

// latest is a sensor's newest reading.
type latest struct {
	Sensor  string    `json:"sensor"`
	TS      time.Time `json:"ts"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	QCFlag  int16     `json:"qc_flag"`
	QCTests []string  `json:"qc_tests"`
	Derived bool      `json:"derived"`
	// Stale is true while staleness tracking has found the sensor stale.
	Stale bool `json:"stale"`
}

// stationsSQL lists stations in id order after $1 (” for the first page).
const stationsSQL = `
SELECT id, name, latitude, longitude, elevation_m, timezone, created_at
FROM stations
WHERE id > $1
ORDER BY id
LIMIT $2`

const stationSQL = `
SELECT id, name, latitude, longitude, elevation_m, timezone, created_at
FROM stations
WHERE id = $1`

// latestSQL returns the newest reading of every sensor of the stations
// $1. A station's sensors come from reading_series (migration 0012), each
// with the UTC month of its newest device time, which the table's triggers
// keep in the transactions that write readings: no reading of the series
// is newer than that month. So one index probe into that month's partition
// finds the newest reading (run-time partition pruning leaves the other
// months unread), however many months readings holds. The probe of the
// months before runs only when that one finds nothing, once the newest
// readings of the series were deleted: UNION ALL runs its branches in
// order, and LIMIT 1 stops it at the first row. A series without readings
// left yields no row.
const latestSQL = `
SELECT k.station, l.sensor, l.ts, l.value, l.unit, l.qc_flag, l.qc_tests, l.derived, coalesce(st.stale, false)
FROM unnest($1::text[]) AS k(station)
JOIN reading_series s ON s.station = k.station
CROSS JOIN LATERAL (
	(SELECT r.sensor, r.ts, r.value, r.unit, r.qc_flag, r.qc_tests, r.derived
	 FROM readings r
	 WHERE r.station = s.station AND r.sensor = s.sensor
	   AND r.ts >= s.latest_month AND r.ts < (s.latest_month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC'
	 ORDER BY r.ts DESC
	 LIMIT 1)
	UNION ALL
	(SELECT r.sensor, r.ts, r.value, r.unit, r.qc_flag, r.qc_tests, r.derived
	 FROM readings r
	 WHERE r.station = s.station AND r.sensor = s.sensor AND r.ts < s.latest_month
	 ORDER BY r.ts DESC
	 LIMIT 1)
	LIMIT 1
) l
LEFT JOIN sensor_status st ON st.station = k.station AND st.sensor = l.sensor
ORDER BY k.station, l.sensor`

// listStations answers GET /api/v1/stations: stations in id order, each
// with its latest readings.
func (a *API) listStations(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "limit", "cursor", "units")
	limit := q.limit()
	after := q.cursorKey(fingerprint(r.URL.Path, q.values))
	units := q.units()
	if err := q.err(); err != nil {
		return err
	}
	list, err := a.stations(r.Context(), stationsSQL, after, limit+1)
	if err != nil {
		return err
	}
	p := page[station]{Items: list}
	if len(list) > limit {
		p.Items = list[:limit]
		next := encodeCursor(list[limit-1].ID, fingerprint(r.URL.Path, q.values))
		p.NextCursor = &next
	}
	if err := a.addLatest(r.Context(), p.Items, units); err != nil {
		return err
	}
	return writeJSON(w, p) // stations have no CSV form: their latest readings nest
}

// getStation answers GET /api/v1/stations/{id}.
func (a *API) getStation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := newQuery(r, "units")
	if err := sensorhub.CheckStation(id); err != nil {
		q.fail("id", "%v", err)
	}
	units := q.units()
	if err := q.err(); err != nil {
		return err
	}
	list, err := a.stations(r.Context(), stationSQL, id)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return notFound("id", id)
	}
	if err := a.addLatest(r.Context(), list, units); err != nil {
		return err
	}
	return writeJSON(w, list[0])
}

// stations runs one of the stations queries.
func (a *API) stations(ctx context.Context, sql string, args ...any) ([]station, error) {
	rows, err := a.cfg.DB.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("api: query stations: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (station, error) {
		var s station
		err := row.Scan(&s.ID, &s.Name, &s.Latitude, &s.Longitude, &s.ElevationM, &s.Timezone, &s.CreatedAt)
		s.CreatedAt = s.CreatedAt.UTC()
		s.Status = statusOK
		s.Latest = []latest{}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("api: read stations: %w", err)
	}
	return list, nil
}

// addLatest fills the latest readings and the status of list's stations,
// in units.
func (a *API) addLatest(ctx context.Context, list []station, units unitSystem) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]string, len(list))
	index := make(map[string]*station, len(list))
	for i := range list {
		ids[i] = list[i].ID
		index[list[i].ID] = &list[i]
	}
	rows, err := a.cfg.DB.Query(ctx, latestSQL, ids)
	if err != nil {
		return fmt.Errorf("api: query latest readings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var l latest
		if err := rows.Scan(&id, &l.Sensor, &l.TS, &l.Value, &l.Unit, &l.QCFlag, &l.QCTests, &l.Derived, &l.Stale); err != nil {
			return fmt.Errorf("api: read latest readings: %w", err)
		}
		l.TS = l.TS.UTC()
		if c, ok := units.converter(l.Unit); ok {
			l.Value, l.Unit = c.value(l.Value), c.unit
		}
		s := index[id]
		s.Latest = append(s.Latest, l)
		if l.Stale {
			s.Status = statusStale
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("api: read latest readings: %w", err)
	}
	return nil
}

// stationExists answers 404 naming param when the station id is unknown.
func (a *API) stationExists(ctx context.Context, param, id string) error {
	var found bool
	err := a.cfg.DB.QueryRow(ctx, `SELECT EXISTS (SELECT FROM stations WHERE id = $1)`, id).Scan(&found)
	switch {
	case err != nil:
		return fmt.Errorf("api: look up station: %w", err)
	case !found:
		return notFound(param, id)
	}
	return nil
}
