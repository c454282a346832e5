package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Time ranges of GET /api/v1/readings.
const (
	// readingsSpan is the range when the request sets no from: the day
	// before to (or now).
	readingsSpan = 24 * time.Hour
	// readingsMaxSpan is the longest range a request may ask for; pages
	// bound each answer, this bounds the rows a filtered page may scan.
	readingsMaxSpan = 366 * 24 * time.Hour
)

// reading is a stored reading as the API answers it.
type reading struct {
	Station string    `json:"station"`
	Sensor  string    `json:"sensor"`
	TS      time.Time `json:"ts"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	QCFlag  int16     `json:"qc_flag"`
	QCTests []string  `json:"qc_tests"`
	Derived bool      `json:"derived"`
}

// readingsSQL is a keyset page of one series: every bound is an index
// condition on the primary key (station, sensor, ts), so a page reads its
// rows and no more however deep it is. $4 is the cursor ('-infinity' on
// the first page), $5 the end of the range ('infinity' when open).
const readingsSQL = `
SELECT station, sensor, ts, value, unit, qc_flag, qc_tests, derived
FROM readings
WHERE station = $1 AND sensor = $2 AND ts >= $3 AND ts > $4 AND ts < $5
  AND ($6::smallint[] IS NULL OR qc_flag = ANY ($6))
  AND ($7::boolean IS NULL OR derived = $7)
ORDER BY ts
LIMIT $8`

// listReadings answers GET /api/v1/readings.
func (a *API) listReadings(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "station", "sensor", "from", "to", "limit", "cursor", "qc_flag", "derived", "units")
	stationID, sensor := q.station("station"), q.sensor("sensor")
	rng := q.timeRange(a.cfg.Now(), readingsSpan, readingsMaxSpan)
	limit := q.limit()
	fp := fingerprint(r.URL.Path, q.values)
	after := q.cursorTime(fp)
	flags, derived, units := q.qcFlags(), q.derived(), q.units()
	if err := q.err(); err != nil {
		return err
	}
	rows, err := a.cfg.DB.Query(r.Context(), readingsSQL, stationID, sensor, rng.From, lowerBound(after), upperBound(rng.To),
		flags, derived, limit+1)
	if err != nil {
		return fmt.Errorf("api: query readings: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (reading, error) {
		var rd reading
		err := row.Scan(&rd.Station, &rd.Sensor, &rd.TS, &rd.Value, &rd.Unit, &rd.QCFlag, &rd.QCTests, &rd.Derived)
		rd.TS = rd.TS.UTC()
		if c, ok := units.converter(rd.Unit); ok {
			rd.Value, rd.Unit = c.value(rd.Value), c.unit
		}
		return rd, err
	})
	if err != nil {
		return fmt.Errorf("api: read readings: %w", err)
	}
	if len(list) == 0 {
		// Only an empty page asks whether the station exists: 404 or [].
		if err := a.stationExists(r.Context(), "station", stationID); err != nil {
			return err
		}
	}
	p := page[reading]{Items: list}
	if len(list) > limit {
		p.Items = list[:limit]
		next := encodeCursor(timeKey(list[limit-1].TS), fp)
		p.NextCursor = &next
	}
	return writeList(w, r, p, readingsTable, cachePolicy{})
}

// readingsTable is readings as CSV; qc_tests are joined by ";".
func readingsTable(list []reading) table {
	t := table{header: []string{"station", "sensor", "ts", "value", "unit", "qc_flag", "qc_tests", "derived"}}
	for _, rd := range list {
		t.records = append(t.records, []string{rd.Station, rd.Sensor, formatTime(rd.TS), formatFloat(rd.Value), rd.Unit,
			strconv.Itoa(int(rd.QCFlag)), strings.Join(rd.QCTests, ";"), strconv.FormatBool(rd.Derived)})
	}
	return t
}

// lowerBound is the exclusive lower bound of a keyset page: after, or
// -infinity on the first page.
func lowerBound(after *time.Time) pgtype.Timestamptz {
	if after == nil {
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: *after, Valid: true}
}

// upperBound is the exclusive end of a range: to, or infinity when open.
func upperBound(to *time.Time) pgtype.Timestamptz {
	if to == nil {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: *to, Valid: true}
}
