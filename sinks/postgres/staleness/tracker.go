package staleness

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
)

// Tracker records arrivals in sensor_status inside the Postgres sink's
// transaction (it is a postgres.Observer), and announces sensor.recovered
// when a stale series gets a new reading. It is safe for concurrent use.
type Tracker struct {
	policy    Policy
	recovered atomic.Uint64
}

// NewTracker returns a Tracker applying policy, which must be valid (see
// Policy.Validate) and should be the Sweeper's.
func NewTracker(policy Policy) *Tracker {
	return &Tracker{policy: policy.withDefaults()}
}

// resolutionPerMinInterval divides Policy.MinInterval into the resolution
// of arrival times (see trackQuery): a tenth of the least learned interval.
const resolutionPerMinInterval = 10

// Recovered counts the sensor.recovered events of transactions this
// Tracker took part in; a rolled-back transaction's count too.
func (t *Tracker) Recovered() uint64 { return t.recovered.Load() }

// trackQuery records one transaction's arrivals with one statement: $1,
// $2, $3 are the stored series' stations, sensors and newest device times. It
// returns the series that were stale, with their transition numbers.
//
// PostgreSQL before 18 cannot return a row's old values from an UPDATE,
// so "old" locks the existing rows first (FOR UPDATE returns their newest
// version, after a concurrent sweep commits) and the UPDATE joins it: a
// row flipped stale by a sweeper is seen stale here, and recovered once.
// The arrival time is now(), the transaction's start, which is what the
// readings' received_at default to in the same transaction. A gap that
// ends a stale period is an outage, not a cadence, and is not learned.
//
// A series that is not stale and whose row was updated less than $6 ago
// (the resolution, a tenth of the least learned interval) is left alone:
// at thousands of readings a second, updating every series' row in every
// group commit cost more than all the rest of the commit, and nothing
// needs arrivals finer than that.
const trackQuery = `WITH arrivals AS (
  SELECT station, sensor, max(ts) AS last_ts
  FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS a(station, sensor, ts)
  GROUP BY station, sensor
), old AS (
  SELECT s.station, s.sensor, s.stale, s.last_received_at, s.gaps
  FROM sensor_status s JOIN arrivals a USING (station, sensor)
  WHERE s.stale OR s.last_received_at IS NULL OR s.last_received_at <= now() - $6::interval
  ORDER BY s.station, s.sensor
  FOR UPDATE OF s
), next AS (
  SELECT o.station, o.sensor, o.stale, a.last_ts,
    CASE WHEN o.stale OR o.last_received_at IS NULL THEN o.gaps
      ELSE (o.gaps || extract(epoch FROM now() - o.last_received_at)::float8)[greatest(cardinality(o.gaps) + 2 - $4, 1):]
    END AS gaps
  FROM old o JOIN arrivals a USING (station, sensor)
), updated AS (
  UPDATE sensor_status s SET
    last_ts = greatest(s.last_ts, n.last_ts),
    last_received_at = now(),
    gaps = n.gaps,
    learned_interval_s = CASE WHEN cardinality(n.gaps) >= $5
      THEN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY g) FROM unnest(n.gaps) AS g) END,
    stale = false,
    transitions = s.transitions + n.stale::int,
    changed_at = CASE WHEN n.stale THEN now() ELSE s.changed_at END
  FROM next n
  WHERE (s.station, s.sensor) = (n.station, n.sensor)
  RETURNING s.station, s.sensor, s.last_ts, s.last_received_at, s.interval_s, s.learned_interval_s, s.transitions, s.changed_at, n.stale AS recovered
), inserted AS (
  INSERT INTO sensor_status (station, sensor, last_ts, last_received_at)
  SELECT a.station, a.sensor, a.last_ts, now()
  FROM arrivals a
  WHERE NOT EXISTS (SELECT FROM sensor_status s WHERE (s.station, s.sensor) = (a.station, a.sensor))
  ORDER BY a.station, a.sensor
  ON CONFLICT (station, sensor) DO UPDATE SET
    last_ts = greatest(sensor_status.last_ts, excluded.last_ts),
    last_received_at = excluded.last_received_at
)
SELECT station, sensor, last_ts, last_received_at, interval_s, learned_interval_s, transitions, changed_at
FROM updated WHERE recovered`

// Observe implements postgres.Observer: it records the arrival of stored
// and returns a sensor.recovered event for every stale series among them.
func (t *Tracker) Observe(ctx context.Context, tx pgx.Tx, stored []sensorhub.Reading) ([]sensorhub.Event, error) {
	// One element per series, not per reading: a group commit of
	// thousands of readings holds a few dozen series.
	type series struct{ station, sensor string }
	latest := make(map[series]time.Time)
	for _, r := range stored {
		k := series{r.Station, r.Sensor}
		if t, ok := latest[k]; !ok || r.Time.After(t) {
			latest[k] = r.Time
		}
	}
	stations, sensors, times := make([]string, 0, len(latest)), make([]string, 0, len(latest)), make([]time.Time, 0, len(latest))
	for k, t := range latest {
		stations, sensors, times = append(stations, k.station), append(sensors, k.sensor), append(times, t)
	}
	rows, err := tx.Query(ctx, trackQuery, stations, sensors, times, maxGaps, minGaps, t.policy.MinInterval/resolutionPerMinInterval)
	if err != nil {
		return nil, fmt.Errorf("staleness: track arrivals: %w", err)
	}
	events, _, err := collectEvents(rows, sensorhub.EventSensorRecovered, t.policy)
	if err != nil {
		return nil, fmt.Errorf("staleness: track arrivals: %w", err)
	}
	t.recovered.Add(uint64(len(events)))
	return events, nil
}

// collectEvents turns rows of (station, sensor, last_ts, last_received_at,
// interval_s, learned_interval_s, transitions, changed_at) into events of
// type typ, each happened at its row's changed_at: the transition's time.
// It also returns the events' payloads.
func collectEvents(rows pgx.Rows, typ string, policy Policy) ([]sensorhub.Event, []sensorhub.SensorStaleness, error) {
	var (
		events     []sensorhub.Event
		payloads   []sensorhub.SensorStaleness
		p          sensorhub.SensorStaleness
		set, learn *float64
		transition int64
		at         time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&p.Station, &p.Sensor, &p.LastTS, &p.LastReceivedAt, &set, &learn, &transition, &at}, func() error {
		p.ExpectedIntervalS = policy.expected(set, learn)
		e, err := sensorhub.NewSensorStalenessEvent(typ, transition, at, p)
		if err != nil {
			return err
		}
		events, payloads = append(events, e), append(payloads, p)
		return nil
	})
	return events, payloads, err
}

var _ postgres.Observer = (*Tracker)(nil)
