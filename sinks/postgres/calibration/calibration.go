// Package calibration manages the table calibrations (DESIGN.md §11): per
// (station, sensor), versions valid in periods [From, To) that never
// overlap, each turning a value in the sensor type's canonical unit into
// value × Scale + Offset.
//
// The Postgres sink applies the calibration valid at a reading's device
// time as it stores the reading, keeping the value before in
// readings.raw_value. A calibration added, or ended, for a past period is
// applied again here to the readings already stored in that period, from
// their raw_value, so doing it twice gives the same values; the same
// transaction announces what changed with an EventApplied event.
//
//	store, err := calibration.New(calibration.Config{DB: pool})
//	...
//	res, err := store.Add(ctx, calibration.Calibration{
//		Station: "roof", Sensor: "temperature", Scale: 1, Offset: -0.4,
//		From: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
//	})
//	fmt.Println(res.Readings, "stored readings calibrated again")
package calibration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// EventApplied is the type of the event that announces readings stored
// again with another calibration; its payload is an Applied. Part of the
// events contract: do not rename it.
const EventApplied = "calibration.applied"

// AppliedVersion is the schema version of Applied.
const AppliedVersion = 1

// DB is what the package needs from PostgreSQL; *pgxpool.Pool satisfies it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Calibration is a row of the table calibrations.
type Calibration struct {
	// ID identifies the calibration; set by Add.
	ID int64 `json:"id"`
	// Station and Sensor name the series it applies to.
	Station string `json:"station"`
	Sensor  string `json:"sensor"`
	// From is the start of its period, inclusive; the zero time means the
	// beginning of time.
	From time.Time `json:"from,omitzero"`
	// To is the end of its period, exclusive; the zero time means open.
	To time.Time `json:"to,omitzero"`
	// Scale multiplies the value before calibration. Required: zero is
	// refused (give 1 for an offset alone).
	Scale float64 `json:"scale"`
	// Offset is added after scaling (column offset_value).
	Offset float64 `json:"offset"`
	// Note says why, for people.
	Note string `json:"note,omitempty"`
	// CreatedAt is when it was added; set by Add.
	CreatedAt time.Time `json:"created_at"`
}

// ErrInvalid is wrapped by the error of a calibration that Add refuses
// unwritten for its own values.
var ErrInvalid = errors.New("invalid calibration")

// ErrOverlap is wrapped by the error of a calibration that Add refuses
// unwritten because its period overlaps one of the same station and
// sensor.
var ErrOverlap = errors.New("calibration period overlaps")

// Validate reports every problem of c's own values at once, in an error
// wrapping ErrInvalid.
func (c Calibration) Validate() error {
	var problems []string
	if err := sensorhub.CheckStation(c.Station); err != nil {
		problems = append(problems, err.Error())
	}
	if err := sensorhub.CheckSensor(c.Sensor); err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0):
		problems = append(problems, fmt.Sprintf("scale %v is not a finite number", c.Scale))
	case c.Scale == 0:
		problems = append(problems, "scale 0 would erase every value")
	}
	if math.IsNaN(c.Offset) || math.IsInf(c.Offset, 0) {
		problems = append(problems, fmt.Sprintf("offset %v is not a finite number", c.Offset))
	}
	if !c.To.IsZero() && !c.To.After(c.From) {
		problems = append(problems, fmt.Sprintf("period [%s, %s) is empty: to must be after from",
			formatTime(c.From, "the beginning"), formatTime(c.To, "open")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// Applied is the payload of an EventApplied event, and what Add and End
// report: stored readings of a (station, sensor) in [From, To) were
// calibrated again, Readings of them changed. Consumers of values computed
// from readings recompute that period.
type Applied struct {
	CalibrationID int64  `json:"calibration_id"`
	Station       string `json:"station"`
	Sensor        string `json:"sensor"`
	// From is the period's start, null for the beginning of time.
	From *time.Time `json:"from"`
	// To is the period's end, exclusive, null for open.
	To *time.Time `json:"to"`
	// Readings is how many stored readings changed value.
	Readings int64 `json:"readings_changed"`
}

func formatTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// bound turns a zero time into nil, the NULL of an open bound.
func bound(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// Config configures a Store.
type Config struct {
	// DB holds the tables calibrations and readings, and the outbox.
	// Required; never closed.
	DB DB
	// DisableEvents writes no EventApplied events, for a deployment that
	// runs without the outbox (postgres.Config.DisableEvents). Default
	// false: events are written.
	DisableEvents bool
	// Followers recompute what they computed from readings that a
	// calibration changed, in the same transaction (package derived's
	// Processor is one). Default none.
	Followers []Follower
}

// Follower is computed from stored readings and follows their calibration:
// Follow is called in the transaction that calibrated the readings of a in
// [a.From, a.To) again, when some changed, holding the station's lock, and
// returns the events announcing what it changed.
type Follower interface {
	Follow(ctx context.Context, tx pgx.Tx, a Applied) ([]sensorhub.Event, error)
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	if c.DB == nil {
		return errors.New("calibration: Config.DB is nil")
	}
	return nil
}

// Store adds, ends and lists calibrations. It is safe for concurrent use,
// also across processes: changes to one station's calibrations take the
// advisory lock the Postgres sink holds while it stores that station's
// readings (postgres.LockStation), so a reading stored concurrently is
// calibrated either by the sink or by the change, never missed.
type Store struct {
	db        DB
	events    bool
	followers []Follower
}

// New returns a Store over cfg.DB, or the error of cfg.Validate.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{db: cfg.DB, events: !cfg.DisableEvents, followers: cfg.Followers}, nil
}

// Add stores c as a new calibration and applies it to the readings already
// stored in its period, all in one transaction, and returns c as stored
// and what was applied. It refuses, writing nothing, a calibration that is
// invalid (ErrInvalid) or whose period overlaps one of the same station
// and sensor (ErrOverlap, naming it).
func (s *Store) Add(ctx context.Context, c Calibration) (Calibration, Applied, error) {
	if err := c.Validate(); err != nil {
		return Calibration{}, Applied{}, err
	}
	var applied Applied
	err := s.inTx(ctx, c.Station, func(tx pgx.Tx) error {
		overlapping, err := query(ctx, tx, `WHERE station = $1 AND sensor = $2
  AND valid_from < coalesce($4::timestamptz, 'infinity') AND coalesce(valid_to, 'infinity') > coalesce($3::timestamptz, '-infinity')`,
			c.Station, c.Sensor, bound(c.From), bound(c.To))
		if err != nil {
			return err
		}
		if len(overlapping) > 0 {
			var periods []string
			for _, o := range overlapping {
				periods = append(periods, fmt.Sprintf("#%d [%s, %s)", o.ID, formatTime(o.From, "the beginning"), formatTime(o.To, "open")))
			}
			return fmt.Errorf("%w: %s/%s already has %s", ErrOverlap, c.Station, c.Sensor, strings.Join(periods, ", "))
		}
		err = tx.QueryRow(ctx, `INSERT INTO calibrations (station, sensor, valid_from, valid_to, scale, offset_value, note)
VALUES ($1, $2, coalesce($3::timestamptz, '-infinity'), $4, $5, $6, $7)
RETURNING id, created_at`, c.Station, c.Sensor, bound(c.From), bound(c.To), c.Scale, c.Offset, c.Note).Scan(&c.ID, &c.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		applied, err = s.reapply(ctx, tx, c.ID, c.Station, c.Sensor, c.From, c.To)
		return err
	})
	if err != nil {
		return Calibration{}, Applied{}, fmt.Errorf("calibration: add: %w", err)
	}
	return c, applied, nil
}

// ErrNotFound is wrapped by the error of End for a calibration that does
// not exist.
var ErrNotFound = errors.New("no such calibration")

// End closes calibration id's period at to: readings from to on are no
// longer calibrated by it, and those already stored get their value before
// calibration back (or the calibration a later Add gives that period). It
// refuses a to that leaves the period empty or lies after its current end
// (ErrInvalid), and an unknown id (ErrNotFound).
func (s *Store) End(ctx context.Context, id int64, to time.Time) (Applied, error) {
	var applied Applied
	err := s.inTx(ctx, "", func(tx pgx.Tx) error {
		// The station first, to take its lock; then the period, which a
		// concurrent change may have moved before the lock was ours.
		var station string
		switch err := tx.QueryRow(ctx, `SELECT station FROM calibrations WHERE id = $1`, id).Scan(&station); {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: #%d", ErrNotFound, id)
		case err != nil:
			return fmt.Errorf("look up: %w", err)
		}
		if err := postgres.LockStation(ctx, tx, station); err != nil {
			return err
		}
		found, err := query(ctx, tx, `WHERE id = $1`, id)
		if err != nil {
			return err
		}
		c := found[0]
		switch {
		case to.IsZero() || !to.After(c.From):
			return fmt.Errorf("%w: end %s of #%d is not after its start %s", ErrInvalid,
				formatTime(to, "(none)"), id, formatTime(c.From, "the beginning"))
		case !c.To.IsZero() && to.After(c.To):
			return fmt.Errorf("%w: end %s of #%d is after its end %s; add a calibration for the later period instead", ErrInvalid,
				formatTime(to, ""), id, formatTime(c.To, ""))
		}
		if _, err := tx.Exec(ctx, `UPDATE calibrations SET valid_to = $2 WHERE id = $1`, id, to); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		applied, err = s.reapply(ctx, tx, id, c.Station, c.Sensor, to, c.To)
		return err
	})
	if err != nil {
		return Applied{}, fmt.Errorf("calibration: end #%d: %w", id, err)
	}
	return applied, nil
}

// List returns the calibrations of station (all when empty) and sensor
// (all when empty), ordered by station, sensor and start.
func (s *Store) List(ctx context.Context, station, sensor string) ([]Calibration, error) {
	list, err := query(ctx, s.db, `WHERE ($1 = '' OR station = $1) AND ($2 = '' OR sensor = $2)`, station, sensor)
	if err != nil {
		return nil, fmt.Errorf("calibration: list: %w", err)
	}
	return list, nil
}

// inTx runs fn in a transaction, holding station's lock (see Store) when
// station is not empty, and commits it.
func (s *Store) inTx(ctx context.Context, station string, fn func(pgx.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// After Commit, Rollback is a no-op.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if station != "" {
		if err := postgres.LockStation(ctx, tx, station); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// reapply calibrates the stored readings of (station, sensor) in [from, to)
// again, each by the calibration now valid at its time or by none, from
// its value before calibration, and announces the change when one did.
// Rows already right are left alone, so applying twice changes nothing.
func (s *Store) reapply(ctx context.Context, tx pgx.Tx, id int64, station, sensor string, from, to time.Time) (Applied, error) {
	tag, err := tx.Exec(ctx, `WITH target AS (
  SELECT r.ts, coalesce(r.raw_value, r.value) AS raw, c.scale, c.offset_value
  FROM readings r
  LEFT JOIN calibrations c
    ON c.station = r.station AND c.sensor = r.sensor AND r.ts >= c.valid_from AND (c.valid_to IS NULL OR r.ts < c.valid_to)
  WHERE r.station = $1 AND r.sensor = $2
    AND r.ts >= coalesce($3::timestamptz, '-infinity') AND r.ts < coalesce($4::timestamptz, 'infinity')
), fixed AS (
  SELECT ts, CASE WHEN scale IS NULL THEN raw ELSE raw * scale + offset_value END AS value,
         CASE WHEN scale IS NULL THEN NULL ELSE raw END AS raw_value
  FROM target
)
UPDATE readings r SET value = f.value, raw_value = f.raw_value
FROM fixed f
WHERE r.station = $1 AND r.sensor = $2 AND r.ts = f.ts
  AND (r.value, r.raw_value) IS DISTINCT FROM (f.value, f.raw_value)`, station, sensor, bound(from), bound(to))
	if err != nil {
		return Applied{}, fmt.Errorf("apply to stored readings: %w", err)
	}
	applied := Applied{CalibrationID: id, Station: station, Sensor: sensor, From: bound(from), To: bound(to), Readings: tag.RowsAffected()}
	if applied.Readings == 0 {
		return applied, nil
	}
	var events []sensorhub.Event
	if s.events {
		event, err := sensorhub.NewEvent(EventApplied, AppliedVersion, applied)
		if err != nil {
			return Applied{}, err
		}
		events = append(events, event)
	}
	for _, f := range s.followers {
		evs, err := f.Follow(ctx, tx, applied)
		if err != nil {
			return Applied{}, err
		}
		if s.events {
			events = append(events, evs...)
		}
	}
	if len(events) == 0 {
		return applied, nil
	}
	if err := outbox.Insert(ctx, tx, events); err != nil {
		return Applied{}, err
	}
	return applied, nil
}

// querier is what query needs: a DB or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// query returns the calibrations matching where, in order.
func query(ctx context.Context, q querier, where string, args ...any) ([]Calibration, error) {
	rows, err := q.Query(ctx, `SELECT id, station, sensor, nullif(valid_from, '-infinity'), valid_to, scale, offset_value, note, created_at
FROM calibrations `+where+` ORDER BY station, sensor, valid_from`, args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Calibration, error) {
		var (
			c        Calibration
			from, to *time.Time
		)
		err := row.Scan(&c.ID, &c.Station, &c.Sensor, &from, &to, &c.Scale, &c.Offset, &c.Note, &c.CreatedAt)
		if from != nil {
			c.From = *from
		}
		if to != nil {
			c.To = *to
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return list, nil
}
