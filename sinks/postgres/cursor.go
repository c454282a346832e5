package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// The processors' bookkeeping, table processor_cursors of migration
// 0004_processing.sql: one row per processor and series, locked by the
// transaction that moves it. Do not rename the table or its columns.
const (
	// lockCursors creates the cursors of the series a transaction stored
	// readings for, or raises their max_ts, and locks them in key order
	// (the order of the SELECT), so that concurrent transactions cannot
	// deadlock. A new cursor starts a window before the earliest reading,
	// so readings that arrive out of order right after it are still in
	// time. RETURNING gives the processed_until before this transaction.
	lockCursors = `INSERT INTO processor_cursors AS c (processor, station, sensor, processed_until, max_ts)
SELECT $1, k.station, k.sensor, k.start, k.max_ts
FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) AS k(station, sensor, start, max_ts)
ORDER BY k.station, k.sensor
ON CONFLICT (processor, station, sensor) DO UPDATE
SET max_ts = greatest(c.max_ts, excluded.max_ts), updated_at = now()
RETURNING station, sensor, processed_until, max_ts, state`

	// idleStations finds the stations of series that hold readings back and
	// received none for the idle time; lockIdleCursors locks those series
	// of the stations, checking again, and skips those a writer holds.
	idleStations = `SELECT DISTINCT station FROM (
  SELECT station FROM processor_cursors
  WHERE processor = ANY($1::text[]) AND processed_until < max_ts AND updated_at < now() - $2::interval
  LIMIT $3) AS idle`
	lockIdleCursors = `SELECT station, sensor, processed_until, max_ts, state
FROM processor_cursors
WHERE processor = $1 AND processed_until < max_ts AND updated_at < now() - $2::interval
  AND station = ANY($4::text[])
ORDER BY station, sensor
LIMIT $3
FOR UPDATE SKIP LOCKED`

	// releaseReadings returns the readings of each series in its range
	// (from, to], in series and device-time order. They come from the
	// table, so a reading stored twice is released once. Readings flagged
	// 4 (fail) are left out (DESIGN.md §12), unless $5: for a FlagSetter.
	//
	// Each range is one run of the primary key's index. The lateral
	// subquery with OFFSET 0, which PostgreSQL never flattens into a join,
	// keeps it so: as a join, a young partition's statistics drew a merge
	// join over a sort of the whole partition, at a cost that grew with
	// it (60 ms for 575 series that released nothing, live at 10,000
	// readings/s from 1,000 stations).
	releaseReadings = `SELECT k.i, r.ts, r.value, r.unit
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS k(station, sensor, after, upto, i)
CROSS JOIN LATERAL (
  SELECT r.ts, r.value, r.unit FROM readings r
  WHERE r.station = k.station AND r.sensor = k.sensor AND r.ts > k.after AND r.ts <= k.upto
    AND ($5 OR r.qc_flag <> 4)
  OFFSET 0) r
ORDER BY k.i, r.ts`

	// saveCursors writes the cursors back. The keys carry a condition true
	// of every cursor whose selectivity the planner does not know, so that
	// it expects few and looks each up in the primary key's index: as a
	// hash join it read every cursor of the processor (7,000 live, for
	// 1,000 keys).
	saveCursors = `UPDATE processor_cursors AS c SET processed_until = k.processed_until, state = k.state
FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::jsonb[]) AS k(station, sensor, processed_until, state)
WHERE c.processor = $1 AND c.station = k.station AND c.sensor = k.sensor
  AND k.processed_until BETWEEN '-infinity' AND 'infinity'`
)

// flushLimit bounds the series one Flush transaction releases per
// processor; Flush repeats until none is left.
const flushLimit = 500

// seriesKey names a series.
type seriesKey struct{ station, sensor string }

// cursor is a locked series on its way through a processor.
type cursor struct {
	seriesKey
	processedUntil time.Time // before this transaction
	upto           time.Time // what this transaction releases to
	state          json.RawMessage
	late           []sensorhub.Reading
	revised        []sensorhub.Reading
}

// revisions are the readings the processors of one transaction revised so
// far (Series.Revise), by series, in device-time order.
type revisions map[seriesKey][]sensorhub.Reading

// add merges the readings s's processor revised.
func (rv revisions) add(s *Series) {
	if len(s.revised) == 0 {
		return
	}
	k := seriesKey{s.Station, s.Sensor}
	merged := append(rv[k], s.revised...)
	slices.SortFunc(merged, func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) })
	rv[k] = slices.CompactFunc(merged, func(a, b sensorhub.Reading) bool { return a.Time.Equal(b.Time) && a.Value == b.Value })
}

// readings returns the revised readings in key order, as lockTouched
// wants them.
func (rv revisions) readings() []sensorhub.Reading {
	keys := slices.SortedFunc(maps.Keys(rv), func(a, b seriesKey) int {
		return cmp.Or(cmp.Compare(a.station, b.station), cmp.Compare(a.sensor, b.sensor))
	})
	var out []sensorhub.Reading
	for _, k := range keys {
		out = append(out, rv[k]...)
	}
	return out
}

// runProcessors runs every processor over the series of fresh, the
// readings the transaction stored for the first time (in key order), and
// over the series earlier processors revised, and returns the events to
// add to the outbox.
func (s *Sink) runProcessors(ctx context.Context, tx pgx.Tx, fresh []sensorhub.Reading) ([]sensorhub.Event, error) {
	if len(fresh) == 0 { // duplicates only: no series moves
		return nil, nil
	}
	var (
		events  []sensorhub.Event
		revised = revisions{}
	)
	for _, p := range s.processors {
		cursors, err := s.lockTouched(ctx, tx, p, fresh, revised)
		if err != nil {
			return nil, err
		}
		evs, err := s.advance(ctx, tx, p, cursors, revised)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}

// lockTouched locks the cursors of p for the series of fresh and of
// revised, raising their max_ts, and returns them with the range to
// release, the late readings and the revised ones.
func (s *Sink) lockTouched(ctx context.Context, tx pgx.Tx, p Processor, fresh []sensorhub.Reading, revised revisions) ([]cursor, error) {
	watches := func(string) bool { return true }
	if f, ok := p.(SensorFilter); ok {
		var err error
		if watches, err = f.Watches(ctx, tx); err != nil {
			return nil, fmt.Errorf("postgres: processor %s: %w", p.Name(), err)
		}
	}
	var (
		stations, sensors []string
		starts, maxes     []time.Time
		bySeries          = map[seriesKey][]sensorhub.Reading{}
	)
	touched := fresh
	if len(revised) > 0 {
		touched = slices.SortedStableFunc(slices.Values(slices.Concat(fresh, revised.readings())), func(a, b sensorhub.Reading) int {
			return cmp.Or(cmp.Compare(a.Station, b.Station), cmp.Compare(a.Sensor, b.Sensor), a.Time.Compare(b.Time))
		})
	}
	for _, r := range touched { // in key order: each series' readings are adjacent and ascending
		if !watches(r.Sensor) {
			continue
		}
		k := seriesKey{r.Station, r.Sensor}
		if _, seen := bySeries[k]; !seen {
			stations, sensors = append(stations, k.station), append(sensors, k.sensor)
			starts, maxes = append(starts, r.Time.Add(-s.window)), append(maxes, r.Time)
			bySeries[k] = nil
		}
		maxes[len(maxes)-1] = r.Time
	}
	for _, r := range fresh {
		if k := (seriesKey{r.Station, r.Sensor}); watches(r.Sensor) {
			bySeries[k] = append(bySeries[k], r)
		}
	}
	if len(stations) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, lockCursors, p.Name(), stations, sensors, starts, maxes)
	if err != nil {
		return nil, fmt.Errorf("postgres: processor %s: lock cursors: %w", p.Name(), err)
	}
	var (
		c     cursor
		maxTS time.Time
	)
	cursors := make([]cursor, 0, len(stations))
	_, err = pgx.ForEachRow(rows, []any{&c.station, &c.sensor, &c.processedUntil, &maxTS, &c.state}, func() error {
		c.upto = c.processedUntil
		if horizon := maxTS.Add(-s.window); horizon.After(c.upto) {
			c.upto = horizon
		}
		c.late = processedBy(c.processedUntil, bySeries[c.seriesKey])
		c.revised = processedBy(c.processedUntil, revised[c.seriesKey])
		cursors = append(cursors, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: processor %s: lock cursors: %w", p.Name(), err)
	}
	return cursors, nil
}

// processedBy returns the readings of rs at or before until: those a
// cursor has moved past.
func processedBy(until time.Time, rs []sensorhub.Reading) []sensorhub.Reading {
	var out []sensorhub.Reading
	for _, r := range rs {
		if r.Time.UnixMicro() <= until.UnixMicro() {
			out = append(out, r)
		}
	}
	return out
}

// advance hands p the readings each cursor releases, its late readings and
// the readings earlier processors revised, saves the cursors that moved or
// whose state changed, adds what p revised to revised, and returns p's
// events, preceded by the late readings' announcements.
func (s *Sink) advance(ctx context.Context, tx pgx.Tx, p Processor, cursors []cursor, revised revisions) ([]sensorhub.Event, error) {
	if len(cursors) == 0 {
		return nil, nil
	}
	released, err := s.release(ctx, tx, p, cursors)
	if err != nil {
		return nil, fmt.Errorf("postgres: processor %s: %w", p.Name(), err)
	}
	var (
		events            []sensorhub.Event
		stations, sensors []string
		untils            []time.Time
		states            []json.RawMessage
	)
	all := make([]*Series, len(cursors))
	for i, c := range cursors {
		rs := released[c.seriesKey]
		all[i] = &Series{Station: c.station, Sensor: c.sensor, Readings: rs, Late: c.late, Revised: c.revised, State: c.state}
		// A reading of the range released now that a processor before p
		// flagged fail is not released: p gets it in Revised instead.
		for _, r := range revised[c.seriesKey] {
			at := r.Time.UnixMicro()
			if at > c.processedUntil.UnixMicro() && at <= c.upto.UnixMicro() &&
				!slices.ContainsFunc(rs, func(x sensorhub.Reading) bool { return x.Time.UnixMicro() == at }) {
				all[i].Revised = append(all[i].Revised, r)
			}
		}
	}
	if err := process(ctx, tx, p, all); err != nil {
		return nil, fmt.Errorf("postgres: processor %s: %w", p.Name(), err)
	}
	for i, c := range cursors {
		series := all[i]
		for _, r := range c.late {
			e, err := newLateEvent(p.Name(), c.processedUntil, r)
			if err != nil {
				return nil, fmt.Errorf("postgres: processor %s: %w", p.Name(), err)
			}
			events = append(events, e)
		}
		events = append(events, series.events...)
		revised.add(series)
		if c.upto.Equal(c.processedUntil) && bytes.Equal(series.State, c.state) {
			continue
		}
		stations, sensors = append(stations, c.station), append(sensors, c.sensor)
		untils, states = append(untils, c.upto), append(states, series.State)
	}
	if len(stations) > 0 {
		if _, err := tx.Exec(ctx, saveCursors, p.Name(), stations, sensors, untils, states); err != nil {
			return nil, fmt.Errorf("postgres: processor %s: save cursors: %w", p.Name(), err)
		}
	}
	return events, nil
}

// process hands p the series that have readings for it: all at once to a
// BatchProcessor, else one by one.
func process(ctx context.Context, tx pgx.Tx, p Processor, all []*Series) error {
	busy := make([]*Series, 0, len(all))
	for _, series := range all {
		if len(series.Readings) > 0 || len(series.Late) > 0 || len(series.Revised) > 0 {
			busy = append(busy, series)
		}
	}
	if len(busy) == 0 {
		return nil
	}
	if b, ok := p.(BatchProcessor); ok {
		return b.ProcessBatch(ctx, tx, busy)
	}
	for _, series := range busy {
		if err := p.Process(ctx, tx, series); err != nil {
			return err
		}
	}
	return nil
}

// release reads the readings each cursor releases to p, by series.
func (s *Sink) release(ctx context.Context, tx pgx.Tx, p Processor, cursors []cursor) (map[seriesKey][]sensorhub.Reading, error) {
	var (
		stations, sensors []string
		afters, uptos     []time.Time
	)
	for _, c := range cursors {
		if c.upto.After(c.processedUntil) {
			stations, sensors = append(stations, c.station), append(sensors, c.sensor)
			afters, uptos = append(afters, c.processedUntil), append(uptos, c.upto)
		}
	}
	out := map[seriesKey][]sensorhub.Reading{}
	if len(stations) == 0 {
		return out, nil
	}
	_, withFailed := p.(FlagSetter)
	rows, err := tx.Query(ctx, releaseReadings, stations, sensors, afters, uptos, withFailed)
	if err != nil {
		return nil, fmt.Errorf("release readings: %w", err)
	}
	var (
		i int64 // from 1
		r sensorhub.Reading
	)
	_, err = pgx.ForEachRow(rows, []any{&i, &r.Time, &r.Value, &r.Unit}, func() error {
		r.Station, r.Sensor = stations[i-1], sensors[i-1]
		k := seriesKey{r.Station, r.Sensor}
		out[k] = append(out[k], r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release readings: %w", err)
	}
	return out, nil
}

// Flush releases, to every processor, the readings held back in the series
// that received no reading for idle (by the database server's clock), and
// commits what the processors did, a transaction at a time for up to
// flushLimit series per processor, all processors in one transaction so
// that revisions reach the processors after the reviser. It returns how
// many series it released. Series a concurrent transaction holds are
// skipped: that transaction moves them.
//
// RunFlusher calls it with the reorder window; without it, a series that
// stops sending keeps its last window of readings unprocessed until its
// next reading.
func (s *Sink) Flush(ctx context.Context, idle time.Duration) (int, error) {
	total := 0
	for {
		n, err := s.flush(ctx, idle)
		if err != nil {
			return total, Classify(err)
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
}

// flush is one transaction of Flush.
func (s *Sink) flush(ctx context.Context, idle time.Duration) (int, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: flush: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// Station locks come before cursor locks, as in Write, or the two
	// would deadlock; they also order this transaction's events after those
	// of writers that committed readings of the same stations first. So the
	// idle series are found first, and locked (and checked again) after.
	names := make([]string, len(s.processors))
	for i, p := range s.processors {
		names[i] = p.Name()
	}
	rows, err := tx.Query(ctx, idleStations, names, idle, flushLimit)
	if err != nil {
		return 0, fmt.Errorf("postgres: flush: find idle series: %w", err)
	}
	stations, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("postgres: flush: find idle series: %w", err)
	}
	if len(stations) == 0 {
		return 0, nil
	}
	if err := lockStations(ctx, tx, stations); err != nil {
		return 0, err
	}
	var (
		events   []sensorhub.Event
		released int
		revised  = revisions{}
	)
	for _, p := range s.processors {
		cursors, err := s.lockIdle(ctx, tx, p, idle, stations, revised)
		if err != nil {
			return 0, err
		}
		released += len(cursors)
		evs, err := s.advance(ctx, tx, p, cursors, revised)
		if err != nil {
			return 0, err
		}
		events = append(events, evs...)
	}
	if err := s.insertEvents(ctx, tx, events); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: flush: commit: %w", err)
	}
	return released, nil
}

// lockIdle locks p's idle cursors of stations, to be released up to their
// newest reading, and the cursors of the series that processors before p
// revised in this transaction.
func (s *Sink) lockIdle(ctx context.Context, tx pgx.Tx, p Processor, idle time.Duration, stations []string, revised revisions) ([]cursor, error) {
	rows, err := tx.Query(ctx, lockIdleCursors, p.Name(), idle, flushLimit, stations)
	if err != nil {
		return nil, fmt.Errorf("postgres: flush %s: lock cursors: %w", p.Name(), err)
	}
	var (
		c       cursor
		maxTS   time.Time
		cursors []cursor
	)
	_, err = pgx.ForEachRow(rows, []any{&c.station, &c.sensor, &c.processedUntil, &maxTS, &c.state}, func() error {
		c.upto = maxTS
		c.revised = processedBy(c.processedUntil, revised[c.seriesKey])
		cursors = append(cursors, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: flush %s: lock cursors: %w", p.Name(), err)
	}
	others := revisions{}
	for k, rs := range revised {
		if !slices.ContainsFunc(cursors, func(c cursor) bool { return c.seriesKey == k }) {
			others[k] = rs
		}
	}
	if len(others) == 0 {
		return cursors, nil
	}
	more, err := s.lockTouched(ctx, tx, p, nil, others)
	if err != nil {
		return nil, err
	}
	return append(cursors, more...), nil
}

// RunFlusher calls Flush every half reorder window with the window as idle
// time, until ctx ends; errors are logged and retried at the next tick.
// Replicas may each run one: a series is flushed by one of them.
func (s *Sink) RunFlusher(ctx context.Context) {
	if len(s.processors) == 0 {
		return
	}
	t := time.NewTicker(max(s.window/2, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Flush(ctx, s.window); err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "postgres: flush held-back readings", "error", err)
		}
	}
}

// lateSpace is the UUID namespace of sensorhub.EventReadingLate events.
// Never change it: consumers dedupe by the UUIDs derived from it.
var lateSpace = uuid.MustParse("b7a4f0a2-54c1-4b8e-8d0e-6c2f9a1d3e57")

// newLateEvent announces that r arrived after processor had processed its
// series up to processedUntil. The UUID is derived from the processor and
// the reading's key: only the transaction that stores r announces it.
func newLateEvent(processor string, processedUntil time.Time, r sensorhub.Reading) (sensorhub.Event, error) {
	name := fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", processor, r.Station, r.Sensor, r.Time.UnixMicro())
	p := sensorhub.ReadingLate{
		Processor: processor, Station: r.Station, Sensor: r.Sensor, Time: r.Time.UTC(), Value: r.Value, Unit: r.Unit,
		ProcessedUntil: processedUntil.UTC(),
	}
	return sensorhub.NewEventAt(uuid.NewSHA1(lateSpace, name).String(), sensorhub.EventReadingLate, sensorhub.ReadingLateVersion, r.Time, p)
}
