// Package postgres is the PostgreSQL sensorhub.Sink: it stores readings in
// the table readings created by package migrations, once per natural key
// (station, sensor, ts), and in the same transaction the events that go
// with them in the outbox (package outbox): sensorhub.EventReadingsStored
// events listing what a transaction stored new (one per
// sensorhub.MaxReadingsPerEvent readings), the handlers' events, and the
// events of its Observers and Processors (state kept in the same
// transaction: package staleness's, package alarms'). A station's first
// reading creates its row in the table stations, and a reading is stored
// calibrated by the row of the table calibrations valid at its device
// time, if any, with the value before in raw_value (package calibration
// manages them).
//
//	pool, err := pgxpool.New(ctx, "postgres://service@127.0.0.1:5432/sensorhub")
//	...
//	sink, err := postgres.New(postgres.Config{DB: pool})
//	...
//	res, err := sink.Write(ctx, readings)
//
// The sink is also the extension point for stateful processing: the
// Processors of its Config run in every commit transaction after the
// readings are stored, see each (station, sensor) series in device-time
// order once the reorder window has passed, and keep their state in the
// table processor_cursors, committed with the readings. StepProcessor makes
// a processor from a function of one reading and a typed state; Flush and
// RunFlusher release the series that stopped sending. docs/processing.md
// tells the guarantees and how it works.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// DB is what the sink needs from PostgreSQL. *pgxpool.Pool and *pgx.Conn
// satisfy it; a *pgx.Conn must not be shared by concurrent Writes.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Ping(ctx context.Context) error
}

// Config configures a Sink.
type Config struct {
	// DB is the database holding the readings table, usually a
	// *pgxpool.Pool. Required; the Sink never closes it.
	DB DB
	// Logger receives a Warn record for every conflict: a reading whose
	// natural key is already stored with another value or unit. nil means
	// slog.Default().
	Logger *slog.Logger
	// DisableEvents turns the outbox off: no readings.stored event is
	// written, and a batch that carries events of its handlers is refused
	// with a permanent error of reason sensorhub.ReasonEventsDisabled, so
	// that its message goes to the poison queue (to be replayed once events
	// are on) instead of losing them. By default (false) events are on: the
	// outbox tables of migration 0002 must exist, and an outbox.Forwarder
	// must run somewhere, or the outbox only grows; package pipeline runs
	// one.
	DisableEvents bool
	// Processors run inside every commit transaction, in this order, over
	// the series the transaction stored readings for (see Processor). Their
	// events need events on; a processor that emits one with events off
	// fails the write with reason sensorhub.ReasonEventsDisabled. Names
	// must be unique. None by default.
	Processors []Processor
	// ReorderWindow is how long, in device time, the readings of a series
	// are held back before processors see them, so that readings arriving
	// out of order within it are processed in device-time order. Default
	// DefaultReorderWindow (10 s); it must not be negative.
	ReorderWindow time.Duration
	// Observers run, in order, inside every transaction that stores new
	// readings (see Observer). They need events on: Validate refuses them
	// with DisableEvents. Default none.
	Observers []Observer
}

// Observer sees, inside the sink's commit transaction, the readings the
// transaction stored for the first time, as they arrived: no reorder
// window, unlike a Processor. It suits state about arrival (staleness) and
// bookkeeping of what changed. Observe runs after the batch's readings are
// inserted, with stored (never duplicates or conflicts) ordered by station,
// sensor and device time, never empty. Its events go into the outbox after
// the readings.stored events and before the handlers' events. An error
// rolls the whole transaction back, and is retried unless Classify calls it
// permanent. Transactions that store readings of one station run one at a
// time, so an Observer sees each station's commits in order; Observe is
// called concurrently for different stations.
type Observer interface {
	Observe(ctx context.Context, tx pgx.Tx, stored []sensorhub.Reading) ([]sensorhub.Event, error)
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("postgres: Config.DB is nil"))
	}
	if c.ReorderWindow < 0 {
		errs = append(errs, fmt.Errorf("postgres: Config.ReorderWindow %s is negative", c.ReorderWindow))
	}
	names := map[string]bool{}
	for i, p := range c.Processors {
		switch {
		case p == nil:
			errs = append(errs, fmt.Errorf("postgres: Config.Processors[%d] is nil", i))
		case !processorName.MatchString(p.Name()):
			errs = append(errs, fmt.Errorf("postgres: processor name %q does not match %s", p.Name(), processorName))
		case names[p.Name()]:
			errs = append(errs, fmt.Errorf("postgres: two processors named %q", p.Name()))
		default:
			names[p.Name()] = true
		}
	}
	if len(c.Observers) > 0 && c.DisableEvents {
		errs = append(errs, errors.New("postgres: Config.Observers need events; unset Config.DisableEvents"))
	}
	if slices.Contains(c.Observers, nil) {
		errs = append(errs, errors.New("postgres: Config.Observers holds nil"))
	}
	return errors.Join(errs...)
}

// Sink stores readings in the table readings. It is safe for concurrent use.
type Sink struct {
	db         DB
	logger     *slog.Logger
	events     bool
	processors []Processor
	window     time.Duration
	observers  []Observer
	// storedKeysMet is set after a write met keys stored already, and
	// cleared by one that met none (see insert).
	storedKeysMet atomic.Bool
}

// New returns a Sink writing to cfg.DB, or the error of cfg.Validate.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sink{
		db: cfg.DB, logger: cfg.Logger, events: !cfg.DisableEvents,
		processors: slices.Clone(cfg.Processors), window: cmp.Or(cfg.ReorderWindow, DefaultReorderWindow),
		observers: slices.Clone(cfg.Observers),
	}, nil
}

// Table and column names are the storage contract (DESIGN.md §3, §10,
// §11): do not rename them.
const (
	selectReadings = `SELECT r.station, r.sensor, r.ts, coalesce(r.raw_value, r.value), r.unit, r.value, r.derived
FROM readings r
JOIN unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(station, sensor, ts)
  ON (r.station, r.sensor, r.ts) = (k.station, k.sensor, k.ts)`

	// replaceDerived stores readings a device sent in place of values
	// sensorhub computed under their keys (derived readings, DESIGN.md
	// §13), calibrated as insertReadings does; a device-sent row is never
	// replaced. Its rows come back as insertReadings' do.
	replaceDerived = `UPDATE readings r
SET value = CASE WHEN c.id IS NULL THEN k.value ELSE k.value * c.scale + c.offset_value END,
    unit = k.unit, raw_value = CASE WHEN c.id IS NULL THEN NULL ELSE k.value END,
    derived = false, received_at = now(), qc_flag = DEFAULT, qc_tests = DEFAULT
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[]) AS k(station, sensor, ts, value, unit)
LEFT JOIN calibrations c
  ON c.station = k.station AND c.sensor = k.sensor AND k.ts >= c.valid_from AND (c.valid_to IS NULL OR k.ts < c.valid_to)
WHERE (r.station, r.sensor, r.ts) = (k.station, k.sensor, k.ts) AND r.derived
RETURNING r.station, r.sensor, r.ts, coalesce(r.raw_value, r.value), r.unit, r.value, false`

	// lockAndCreateStations takes the advisory locks $1, in array order, and
	// then creates the stations $2 that do not exist yet: one round trip.
	lockAndCreateStations = `WITH locked AS (SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS k)
INSERT INTO stations (id) SELECT s FROM locked, unnest($2::text[]) AS s
ON CONFLICT DO NOTHING`
)

// Write stores a batch in one transaction and counts, per reading, whether
// it was stored, a duplicate (its key is stored with the same value and
// unit, by an earlier write or earlier in this batch) or a conflict (its key
// is stored with another value or unit; the first write wins and the
// conflict is logged at Warn). Values are compared before calibration, so
// a reading sent again after a calibration is still a duplicate. With
// events on, the same transaction inserts into the outbox the
// sensorhub.EventReadingsStored events listing the readings stored for the
// first time, if any, with their stored (calibrated) values (see
// sensorhub.NewReadingsStored), followed by the batch's events, then the
// events of the processors, which run in the same transaction over the
// series of the new readings (see Processor). An empty batch is a no-op.
//
// Errors are wrapped with context. Those that retrying cannot fix, data
// rejected by PostgreSQL, are marked sensorhub.Permanent (see Classify);
// all others, including context errors, are transient.
func (s *Sink) Write(ctx context.Context, batch sensorhub.Batch) (sensorhub.WriteResult, error) {
	res, err := s.WriteBatches(ctx, []sensorhub.Batch{batch})
	if err != nil {
		return sensorhub.WriteResult{}, err
	}
	return res[0], nil
}

// WriteBatches stores several batches in one transaction, as Write stores
// one, and reports per batch: the hub's group commit (sensorhub.BatchConfig). A
// reading counts as a duplicate of an equal one in an earlier batch of the
// same call. The transaction's readings.stored events list the new
// readings of every batch; the batches' events follow them in batch order.
func (s *Sink) WriteBatches(ctx context.Context, batches []sensorhub.Batch) ([]sensorhub.WriteResult, error) {
	results := make([]sensorhub.WriteResult, len(batches))
	n := 0
	for _, b := range batches {
		n += len(b.Readings)
	}
	var (
		all    = make([]sensorhub.Reading, 0, n)
		events []sensorhub.Event
	)
	for _, b := range batches {
		all = append(all, b.Readings...)
		events = append(events, b.Events...)
	}
	if !s.events && len(events) > 0 {
		return nil, sensorhub.Permanent(sensorhub.ReasonEventsDisabled,
			fmt.Errorf("postgres: %d handler events, but events are disabled (Config.DisableEvents): turn them on and run an outbox forwarder", len(events)))
	}
	if len(all) == 0 && len(events) == 0 {
		return results, nil
	}
	outcomes, err := s.write(ctx, all, events)
	if err != nil {
		return nil, Classify(err)
	}
	i := 0
	for b, batch := range batches {
		for range batch.Readings {
			switch outcomes[i] {
			case stored:
				results[b].Stored++
			case replaced:
				results[b].Stored++
				results[b].Replaced++
			case duplicate:
				results[b].Duplicates++
			case conflicting:
				results[b].Conflicts++
			}
			i++
		}
	}
	return results, nil
}

// outcome is what became of one reading.
type outcome uint8

const (
	stored outcome = iota
	duplicate
	conflicting
	// replaced is stored in place of a derived reading.
	replaced
)

// write stores readings and events in one transaction and returns each
// reading's outcome, in input order.
func (s *Sink) write(ctx context.Context, readings []sensorhub.Reading, events []sensorhub.Event) ([]outcome, error) {
	// Concurrent writers whose batches share keys wait on each other's row
	// locks; taking them in one order (PostgreSQL inserts in array order)
	// keeps that from turning into a deadlock. The sort is stable so that
	// within a batch the first of two readings with one key still wins.
	order := make([]int, len(readings))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareKeys(keyOf(readings[a]), keyOf(readings[b])) })
	batch := make([]sensorhub.Reading, len(readings))
	for i, o := range order {
		batch[i] = readings[o]
	}

	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	// After Commit, Rollback is a no-op; on every other path it is the only
	// cleanup needed, and its error adds nothing to the one returned.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if err := lockStations(ctx, tx, stationsOf(batch)); err != nil {
		return nil, err
	}
	inserted, err := s.insert(ctx, tx, batch)
	if err != nil {
		return nil, fmt.Errorf("postgres: insert readings: %w", err)
	}

	// Each inserted row accounts for the first reading that matches it;
	// whatever is left was not inserted.
	outcomes := make([]outcome, len(readings))
	var (
		rest  []int                                      // positions in batch
		fresh = make([]sensorhub.Reading, 0, len(batch)) // stored now, in key order
	)
	for i, r := range batch {
		k := keyOf(r)
		if v, ok := inserted[k]; ok && v.matches(r) && !v.claimed {
			v.claimed = true
			inserted[k] = v
			r.Value = v.calibrated
			fresh = append(fresh, r)
			continue
		}
		rest = append(rest, i)
	}
	// Conflicts are logged once committed, so that a failed commit, which is
	// retried, does not report them twice.
	var conflicts []conflict
	if len(rest) > 0 {
		restReadings := make([]sensorhub.Reading, len(rest))
		for j, i := range rest {
			restReadings[j] = batch[i]
		}
		stations, sensors, times, _, _ := columns(restReadings)
		storedRows, err := queryStored(ctx, tx, len(rest), selectReadings, stations, sensors, times)
		if err != nil {
			return nil, fmt.Errorf("postgres: look up stored readings: %w", err)
		}
		var replacing []int // positions in batch of readings stored in place of derived ones
		for _, i := range rest {
			r := batch[i]
			k := keyOf(r)
			v, ok := storedRows[k]
			switch {
			case !ok:
				// Only a concurrent DELETE can do this; a retry stores the reading.
				return nil, fmt.Errorf("postgres: reading %s/%s at %s neither inserted nor found",
					r.Station, r.Sensor, r.Time.UTC().Format(time.RFC3339Nano))
			case v.derived:
				// The first reading of the key replaces the computed value;
				// the key's later readings of the batch compare with it.
				replacing = append(replacing, i)
				first := batch[i]
				v = storedValue{value: first.Value, unit: first.Unit}
				storedRows[k] = v
				continue
			case v.matches(r):
				outcomes[order[i]] = duplicate
			default:
				outcomes[order[i]] = conflicting
				conflicts = append(conflicts, conflict{stored: v, dropped: r})
			}
		}
		if fresh, err = s.replaceDerived(ctx, tx, batch, replacing, order, outcomes, fresh); err != nil {
			return nil, err
		}
	}

	processed, err := s.runProcessors(ctx, tx, fresh)
	if err != nil {
		return nil, err
	}
	var stored []sensorhub.Event
	if s.events {
		if stored, err = sensorhub.NewReadingsStored(fresh); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
	}
	observed, err := s.observe(ctx, tx, fresh)
	if err != nil {
		return nil, err
	}
	// In the outbox: readings.stored, then the observers', the handlers' and
	// the processors' events.
	if err := s.insertEvents(ctx, tx, slices.Concat(stored, observed, events, processed)); err != nil {
		return nil, err
	}

	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	for _, c := range conflicts {
		s.logger.WarnContext(ctx, "postgres: conflicting reading dropped, the stored one wins",
			"station", c.dropped.Station, "sensor", c.dropped.Sensor, "ts", c.dropped.Time.UTC(),
			"stored_value", c.stored.value, "new_value", c.dropped.Value,
			"stored_unit", c.stored.unit, "new_unit", c.dropped.Unit)
	}
	return outcomes, nil
}

// replaceDerived stores the readings of batch at positions replacing in
// place of the derived readings under their keys, marks their outcomes
// (outcomes are in input order, order maps batch positions to it), and
// returns fresh with them added, in key order.
func (s *Sink) replaceDerived(ctx context.Context, tx pgx.Tx, batch []sensorhub.Reading, replacing, order []int, outcomes []outcome, fresh []sensorhub.Reading) ([]sensorhub.Reading, error) {
	if len(replacing) == 0 {
		return fresh, nil
	}
	rs := make([]sensorhub.Reading, len(replacing))
	for j, i := range replacing {
		rs[j] = batch[i]
	}
	stations, sensors, times, values, units := columns(rs)
	rows, err := queryStored(ctx, tx, len(stations), replaceDerived, stations, sensors, times, values, units)
	if err != nil {
		return nil, fmt.Errorf("postgres: replace derived readings: %w", err)
	}
	for j, i := range replacing {
		r := rs[j]
		v, ok := rows[keyOf(r)]
		if !ok { // only a concurrent change can do this; a retry stores the reading
			return nil, fmt.Errorf("postgres: derived reading %s/%s at %s neither replaced nor found",
				r.Station, r.Sensor, r.Time.UTC().Format(time.RFC3339Nano))
		}
		r.Value = v.calibrated
		outcomes[order[i]] = replaced
		fresh = append(fresh, r)
	}
	slices.SortStableFunc(fresh, func(a, b sensorhub.Reading) int { return compareKeys(keyOf(a), keyOf(b)) })
	return fresh, nil
}

// observe runs the observers over the readings stored now and returns
// their events.
func (s *Sink) observe(ctx context.Context, tx pgx.Tx, fresh []sensorhub.Reading) ([]sensorhub.Event, error) {
	if len(fresh) == 0 {
		return nil, nil
	}
	var events []sensorhub.Event
	for _, p := range s.observers {
		e, err := p.Observe(ctx, tx, fresh)
		if err != nil {
			return nil, fmt.Errorf("postgres: observer %T: %w", p, err)
		}
		events = append(events, e...)
	}
	return events, nil
}

// insertEvents adds events to the outbox within tx; with events off, any
// event is a permanent error.
func (s *Sink) insertEvents(ctx context.Context, tx pgx.Tx, events []sensorhub.Event) error {
	if len(events) == 0 {
		return nil
	}
	if !s.events {
		return sensorhub.Permanent(sensorhub.ReasonEventsDisabled,
			fmt.Errorf("postgres: %d processor events, but events are disabled (Config.DisableEvents): turn them on and run an outbox forwarder", len(events)))
	}
	if err := outbox.Insert(ctx, tx, events); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// processorName is the rule for Processor names.
var processorName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// stationsOf returns the stations of batch, which is sorted by station,
// once each.
func stationsOf(batch []sensorhub.Reading) []string {
	var stations []string
	for i, r := range batch {
		if i == 0 || r.Station != batch[i-1].Station {
			stations = append(stations, r.Station)
		}
	}
	return stations
}

// lockStations takes the lock of every station (see LockStation), in one
// order, before the transaction writes anything, and creates the stations
// that do not exist yet (DESIGN.md §10).
//
// The lock does three jobs. Two transactions holding readings of one
// station commit one after the other, and the second gets the later
// transaction ID: the forwarder, which goes by transaction ID, then
// delivers the events of every station in commit order (without it, a
// transaction that began writing first but committed last would have its
// event forwarded first). A calibration added concurrently (package
// calibration) is either committed before the insert, which then applies
// it, or waits for the insert to commit and then re-applies itself to the
// new rows. And processors see a station's commits one at a time, the
// flusher's included.
func lockStations(ctx context.Context, tx pgx.Tx, stations []string) error {
	keys := make([]int64, len(stations))
	for i, station := range stations {
		keys[i] = stationLock(station)
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// unnest yields the keys in array order and the aggregate takes them in
	// that order: every transaction locks in ascending order, no deadlock.
	if _, err := tx.Exec(ctx, lockAndCreateStations, keys, stations); err != nil {
		return fmt.Errorf("postgres: lock and create stations: %w", err)
	}
	return nil
}

// LockStation takes in tx the transaction-level advisory lock that a Sink
// holds on a station from before it inserts the station's readings until
// it commits them. Code that changes how a station's readings are stored
// (package calibration) takes it to serialize with the sink.
func LockStation(ctx context.Context, tx pgx.Tx, station string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, stationLock(station)); err != nil {
		return fmt.Errorf("postgres: lock station %s: %w", station, err)
	}
	return nil
}

// stationLock is the advisory lock ID of a station. It must not change
// between releases: replicas of different versions take the same locks.
func stationLock(station string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sensorhub:station:" + station))
	return int64(h.Sum64())
}

// Ping checks that the database answers, for health checks.
func (s *Sink) Ping(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Classify marks err sensorhub.Permanent, with reason
// sensorhub.ReasonDatabaseRejected, when PostgreSQL rejected the data:
// SQLSTATE class 22 (data exception) or 23 (integrity constraint violation).
// Every other error is returned unchanged and so stays transient: lost
// connections (class 08), serialization failures and deadlocks (40),
// exhausted resources (53), shutdowns and cancellations (57), a missing
// table because migrations were not run, unreachable servers and context
// errors. Classify(nil) returns nil.
func Classify(err error) error {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if ok && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		return sensorhub.Permanent(sensorhub.ReasonDatabaseRejected, err)
	}
	return err
}

// key is a reading's natural key. Time is in microseconds since the Unix
// epoch, PostgreSQL's precision: pgx truncates to it when it sends a
// time.Time, and so does time.Time.UnixMicro.
type key struct {
	station, sensor string
	micros          int64
}

func keyOf(r sensorhub.Reading) key {
	return key{station: r.Station, sensor: r.Sensor, micros: r.Time.UnixMicro()}
}

func compareKeys(a, b key) int {
	return cmp.Or(cmp.Compare(a.station, b.station), cmp.Compare(a.sensor, b.sensor), cmp.Compare(a.micros, b.micros))
}

// storedValue is what the table holds under a key.
type storedValue struct {
	// value is the value before calibration, as a reading carries it:
	// raw_value where a calibration applied, else value.
	value float64
	unit  string
	// calibrated is the value stored, after calibration.
	calibrated float64
	// derived is set when sensorhub computed the stored value (DESIGN.md
	// §13): a reading sent under its key replaces it.
	derived bool
	// claimed is set once a reading of the batch is counted as the one
	// that inserted this row.
	claimed bool
}

// matches reports whether r carries the stored value and unit. NaN matches
// NaN, as in PostgreSQL's float8 equality.
func (v storedValue) matches(r sensorhub.Reading) bool {
	sameValue := v.value == r.Value || (math.IsNaN(v.value) && math.IsNaN(r.Value))
	return sameValue && v.unit == r.Unit
}

// conflict is a reading dropped because its key holds another value.
type conflict struct {
	stored  storedValue
	dropped sensorhub.Reading
}

// columns turns readings into the array parameters of the queries.
func columns(readings []sensorhub.Reading) (stations, sensors []string, times []time.Time, values []float64, units []string) {
	n := len(readings)
	stations, sensors, times = make([]string, n), make([]string, n), make([]time.Time, n)
	values, units = make([]float64, n), make([]string, n)
	for i, r := range readings {
		stations[i], sensors[i], times[i], values[i], units[i] = r.Station, r.Sensor, r.Time, r.Value, r.Unit
	}
	return stations, sensors, times, values, units
}

// queryStored runs a query returning (station, sensor, ts, value before
// calibration, unit, stored value, derived) rows, at most n, and maps them
// by key.
func queryStored(ctx context.Context, tx pgx.Tx, n int, sql string, args ...any) (map[key]storedValue, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return scanStored(rows, n)
}

// scanStored reads queryStored's rows.
func scanStored(rows pgx.Rows, n int) (map[key]storedValue, error) {
	out := make(map[key]storedValue, n)
	var (
		r  sensorhub.Reading
		sv storedValue
	)
	_, err := pgx.ForEachRow(rows, []any{&r.Station, &r.Sensor, &r.Time, &sv.value, &sv.unit, &sv.calibrated, &sv.derived}, func() error {
		out[keyOf(r)] = sv
		return nil
	})
	return out, err
}

var (
	_ sensorhub.Sink        = (*Sink)(nil)
	_ sensorhub.BatchWriter = (*Sink)(nil)
)
