package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollup is one of the rollup tables (DESIGN.md §14) as the interval
// parameter names it.
type rollup struct {
	// sql is the query of a keyset page of the table.
	sql string
	// span is the range when the request sets no from; maxSpan the
	// longest range a request may ask for.
	span, maxSpan time.Duration
}

const day = 24 * time.Hour

// aggregatesSQL is a keyset page of one series' buckets in a rollup table,
// on its primary key (station, sensor, bucket). The table name is spelt
// out per table: no SQL is built from a request. $4 is the cursor
// ('-infinity' on the first page), $5 the end of the range ('infinity'
// when open).
const aggregateColumns = `station, sensor, bucket, count, avg, min, max, sum, min_ts, max_ts, last, last_ts, coverage`
const aggregateWhere = `
WHERE station = $1 AND sensor = $2 AND bucket >= $3 AND bucket > $4 AND bucket < $5
ORDER BY bucket
LIMIT $6`

// rollups maps the interval parameter's values to their tables.
var rollups = map[string]rollup{
	"5m": {sql: `SELECT ` + aggregateColumns + ` FROM readings_5m` + aggregateWhere, span: day, maxSpan: 31 * day},
	"1h": {sql: `SELECT ` + aggregateColumns + ` FROM readings_1h` + aggregateWhere, span: 7 * day, maxSpan: 366 * day},
	"1d": {sql: `SELECT ` + aggregateColumns + ` FROM readings_1d` + aggregateWhere, span: 365 * day, maxSpan: 100 * 366 * day},
}

// unitSQL tells whether the station exists and the unit its series is
// stored in, from the newest reading (the rollup tables hold none): null
// when there is none.
const unitSQL = `
SELECT EXISTS (SELECT FROM stations WHERE id = $1),
       (SELECT unit FROM readings WHERE station = $1 AND sensor = $2 ORDER BY ts DESC LIMIT 1)`

// aggregate is a row of a rollup table as the API answers it. Which
// fields are set depends on how the sensor type aggregates.
type aggregate struct {
	Station  string     `json:"station"`
	Sensor   string     `json:"sensor"`
	Bucket   time.Time  `json:"bucket"`
	Count    int64      `json:"count"`
	Avg      *float64   `json:"avg"`
	Min      *float64   `json:"min"`
	Max      *float64   `json:"max"`
	Sum      *float64   `json:"sum"`
	MinTS    *time.Time `json:"min_ts"`
	MaxTS    *time.Time `json:"max_ts"`
	Last     *float64   `json:"last"`
	LastTS   *time.Time `json:"last_ts"`
	Coverage *float64   `json:"coverage"`
	// Unit is the unit of avg, min, max, sum and last; null when the
	// series has no reading left to tell it.
	Unit *string `json:"unit"`
}

// listAggregates answers GET /api/v1/aggregates.
func (a *API) listAggregates(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "station", "sensor", "interval", "from", "to", "limit", "cursor", "units")
	stationID, sensor := q.station("station"), q.sensor("sensor")
	interval := q.values.Get("interval")
	table, ok := rollups[interval]
	switch {
	case !q.has("interval"):
		q.fail("interval", "interval is required: 5m, 1h or 1d")
		table = rollups["5m"] // for the checks below
	case !ok:
		q.fail("interval", "%s is not an interval: 5m, 1h or 1d", quote(interval))
		table = rollups["5m"]
	}
	rng := q.timeRange(a.cfg.Now(), table.span, table.maxSpan)
	limit := q.limit()
	fp := fingerprint(r.URL.Path, q.values)
	after := q.cursorTime(fp)
	units := q.units()
	if err := q.err(); err != nil {
		return err
	}
	var found bool
	var unit *string
	if err := a.cfg.DB.QueryRow(r.Context(), unitSQL, stationID, sensor).Scan(&found, &unit); err != nil {
		return fmt.Errorf("api: look up station and unit: %w", err)
	}
	if !found {
		return notFound("station", stationID)
	}
	conv, convert := conversion{}, false
	if unit != nil {
		conv, convert = units.converter(*unit)
		if convert {
			unit = &conv.unit
		}
	}
	rows, err := a.cfg.DB.Query(r.Context(), table.sql, stationID, sensor, rng.From, lowerBound(after), upperBound(rng.To), limit+1)
	if err != nil {
		return fmt.Errorf("api: query aggregates: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (aggregate, error) {
		var ag aggregate
		err := row.Scan(&ag.Station, &ag.Sensor, &ag.Bucket, &ag.Count, &ag.Avg, &ag.Min, &ag.Max, &ag.Sum,
			&ag.MinTS, &ag.MaxTS, &ag.Last, &ag.LastTS, &ag.Coverage)
		ag.Unit = unit
		ag.Bucket = ag.Bucket.UTC()
		for _, t := range []*time.Time{ag.MinTS, ag.MaxTS, ag.LastTS} {
			if t != nil {
				*t = t.UTC()
			}
		}
		if convert {
			for _, v := range []*float64{ag.Avg, ag.Min, ag.Max, ag.Last} {
				if v != nil {
					*v = conv.value(*v)
				}
			}
			if ag.Sum != nil {
				*ag.Sum = conv.sum(*ag.Sum, ag.Count)
			}
		}
		return ag, err
	})
	if err != nil {
		return fmt.Errorf("api: read aggregates: %w", err)
	}
	p := page[aggregate]{Items: list}
	if len(list) > limit {
		p.Items = list[:limit]
		next := encodeCursor(timeKey(list[limit-1].Bucket), fp)
		p.NextCursor = &next
	}
	return writeList(w, r, p, aggregatesTable, cachePolicy{maxAge: a.cfg.CacheMaxAge, private: a.cfg.Token != ""})
}

// aggregatesTable is aggregates as CSV; null fields are empty cells.
func aggregatesTable(list []aggregate) table {
	t := table{header: []string{"station", "sensor", "bucket", "count", "avg", "min", "max", "sum",
		"min_ts", "max_ts", "last", "last_ts", "coverage", "unit"}}
	for _, ag := range list {
		unit := ""
		if ag.Unit != nil {
			unit = *ag.Unit
		}
		t.records = append(t.records, []string{ag.Station, ag.Sensor, formatTime(ag.Bucket), strconv.FormatInt(ag.Count, 10),
			optFloat(ag.Avg), optFloat(ag.Min), optFloat(ag.Max), optFloat(ag.Sum), optTime(ag.MinTS), optTime(ag.MaxTS),
			optFloat(ag.Last), optTime(ag.LastTS), optFloat(ag.Coverage), unit})
	}
	return t
}
