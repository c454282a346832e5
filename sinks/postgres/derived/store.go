package derived

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// writeDerived stores the computed values ($1–$5) as derived readings and
// removes the derived readings under the keys $6–$8, in one statement. A
// device-sent reading (derived false) is never replaced nor removed, and a
// value already stored is left alone. Rows are written in key order, as
// the sink writes, so that concurrent writers lock in one order. It
// returns what changed: removed rows with a null value.
//
// The keys to remove carry a condition true of every key whose
// selectivity the planner does not know, so that it expects few and looks
// each up in the primary key's index: for 1,000 keys it scanned a young
// partition whole (TestReadingsAreReadByKey).
const writeDerived = `WITH gone AS (
  DELETE FROM readings r
  USING unnest($6::text[], $7::text[], $8::timestamptz[]) AS k(station, sensor, ts)
  WHERE (r.station, r.sensor, r.ts) = (k.station, k.sensor, k.ts) AND r.derived
    AND k.ts BETWEEN '-infinity' AND 'infinity'
  RETURNING r.station, r.sensor, r.ts
), put AS (
  INSERT INTO readings AS r (station, sensor, ts, value, unit, derived)
  SELECT k.station, k.sensor, k.ts, k.value, k.unit, true
  FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[]) WITH ORDINALITY AS k(station, sensor, ts, value, unit, n)
  ORDER BY k.n
  ON CONFLICT (station, sensor, ts) DO UPDATE SET value = excluded.value, unit = excluded.unit, received_at = now()
  WHERE r.derived AND (r.value, r.unit) IS DISTINCT FROM (excluded.value, excluded.unit)
  RETURNING r.station, r.sensor, r.ts, r.value, r.unit
)
SELECT station, sensor, ts, value, unit FROM put
UNION ALL
SELECT station, sensor, ts, NULL, NULL FROM gone`

// change is a derived reading stored, changed or removed (value nil).
type change struct {
	station, sensor string
	ts              time.Time
	value           *float64
	unit            *string
}

// scanChange reads a row of writeDerived.
func scanChange(row pgx.CollectableRow) (change, error) {
	var c change
	return c, row.Scan(&c.station, &c.sensor, &c.ts, &c.value, &c.unit)
}

// write stores results and returns what changed.
func write(ctx context.Context, tx pgx.Tx, results map[key]result) ([]change, error) {
	if len(results) == 0 {
		return nil, nil
	}
	keys := make([]key, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.station, b.station), cmp.Compare(a.sensor, b.sensor), cmp.Compare(a.at, b.at))
	})
	var (
		putStations, putSensors, putUnits, goneStations, goneSensors []string
		putTimes, goneTimes                                          []time.Time
		putValues                                                    []float64
	)
	for _, k := range keys {
		r := results[k]
		ts := time.UnixMicro(k.at)
		if r.ok && !math.IsNaN(r.value) && !math.IsInf(r.value, 0) {
			putStations, putSensors, putTimes = append(putStations, k.station), append(putSensors, k.sensor), append(putTimes, ts)
			putValues, putUnits = append(putValues, r.value), append(putUnits, r.unit)
			continue
		}
		goneStations, goneSensors, goneTimes = append(goneStations, k.station), append(goneSensors, k.sensor), append(goneTimes, ts)
	}
	rows, err := tx.Query(ctx, writeDerived, putStations, putSensors, putTimes, putValues, putUnits, goneStations, goneSensors, goneTimes)
	if err != nil {
		return nil, fmt.Errorf("derived: store: %w", err)
	}
	changes, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return nil, fmt.Errorf("derived: store: %w", err)
	}
	return changes, nil
}

// EventDerived is the type of the event that lists the derived readings a
// transaction stored, changed or removed; its payload is a Derived. Part
// of the events contract: do not rename it.
const EventDerived = "readings.derived"

// DerivedVersion is the schema version of Derived.
const DerivedVersion = 1

// Derived is the payload of an EventDerived event: derived readings
// computed anew (Readings: stored for the first time or with a new value)
// and removed (Removed: their inputs no longer pair, or one was flagged
// fail), at most sensorhub.MaxReadingsPerEvent of each.
type Derived struct {
	Readings []sensorhub.StoredReading `json:"readings"`
	Removed  []RemovedReading          `json:"removed"`
}

// RemovedReading is the key of a removed derived reading.
type RemovedReading struct {
	Station string    `json:"station"`
	Sensor  string    `json:"sensor"`
	Time    time.Time `json:"ts"`
}

// newDerivedEvents returns the events listing changes, in chunks of
// sensorhub.MaxReadingsPerEvent. Each UUID is a new time-ordered one, as
// reading.flagged's: a change is committed once, in the transaction that
// stores it (a retry or a replica finds the stored value equal and
// announces nothing), and a UUID derived from the changes repeated when a
// value went and came back (a partner flagged fail, then not), so that a
// consumer deduping by UUID dropped the later change.
func newDerivedEvents(changes []change) ([]sensorhub.Event, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	slices.SortFunc(changes, func(a, b change) int {
		return cmp.Or(cmp.Compare(a.station, b.station), cmp.Compare(a.sensor, b.sensor), a.ts.Compare(b.ts))
	})
	now := time.Now()
	var events []sensorhub.Event
	for chunk := range slices.Chunk(changes, sensorhub.MaxReadingsPerEvent) {
		var p Derived
		for _, c := range chunk {
			if c.value == nil {
				p.Removed = append(p.Removed, RemovedReading{Station: c.station, Sensor: c.sensor, Time: c.ts.UTC()})
				continue
			}
			p.Readings = append(p.Readings, sensorhub.StoredReading{Station: c.station, Sensor: c.sensor, Time: c.ts.UTC(), Value: *c.value, Unit: *c.unit})
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("derived: event UUID: %w", err)
		}
		e, err := sensorhub.NewEventAt(id.String(), EventDerived, DerivedVersion, now, p)
		if err != nil {
			return nil, fmt.Errorf("derived: %w", err)
		}
		events = append(events, e)
	}
	return events, nil
}
