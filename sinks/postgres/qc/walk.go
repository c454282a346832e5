package qc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// The readings' columns as the tests see them, with the worst manual flag
// whose period holds each (table qc_manual_flags of migration 0007).
const columns = `r.ts, r.value, r.unit, r.qc_flag, r.qc_tests,
  coalesce((SELECT max(m.flag) FROM qc_manual_flags m
    WHERE m.station = r.station AND m.sensor = r.sensor AND r.ts >= m.valid_from AND r.ts < m.valid_to), 0) AS manual`

const (
	// selectStretches returns, for each series k (numbered from 1), its
	// readings in [lo, hi] and the one after hi.
	selectStretches = `SELECT k.i, x.ts, x.value, x.unit, x.qc_flag, x.qc_tests, x.manual
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS k(station, sensor, lo, hi, i)
CROSS JOIN LATERAL (
  (SELECT ` + columns + ` FROM readings r WHERE r.station = k.station AND r.sensor = k.sensor AND r.ts >= k.lo AND r.ts <= k.hi)
  UNION ALL
  (SELECT ` + columns + ` FROM readings r WHERE r.station = k.station AND r.sensor = k.sensor AND r.ts > k.hi ORDER BY r.ts LIMIT 1)
) AS x
ORDER BY k.i, x.ts`

	// selectContexts returns, for each series k (numbered from 1), up to $4
	// of its readings before lo, the latest first.
	selectContexts = `SELECT k.i, x.ts, x.value, x.unit, x.qc_flag, x.qc_tests, x.manual
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS k(station, sensor, lo, i)
CROSS JOIN LATERAL (
  SELECT ` + columns + ` FROM readings r WHERE r.station = k.station AND r.sensor = k.sensor AND r.ts < k.lo
  ORDER BY r.ts DESC LIMIT $4
) AS x
ORDER BY k.i, x.ts DESC`

	// selectBefore returns up to $4 readings of a series before $3, the
	// latest first.
	selectBefore = `SELECT ` + columns + ` FROM readings r WHERE r.station = $1 AND r.sensor = $2 AND r.ts < $3 ORDER BY r.ts DESC LIMIT $4`

	// selectPage returns up to $4 readings of a series from $3 on.
	selectPage = `SELECT ` + columns + ` FROM readings r WHERE r.station = $1 AND r.sensor = $2 AND r.ts >= $3 ORDER BY r.ts LIMIT $4`

	// updateFlags stores the flags that changed; tests travel joined by
	// commas (test names have none).
	//
	// Its one good plan looks each key up in the primary key's index, at a
	// cost that follows the keys. Priced with random_page_cost as disk
	// reads, those lookups lost, in a young partition (a month's first
	// weeks), to a hash or merge join over all of it, at a cost that
	// follows the partition; and rows bounded by the keys' stations, types
	// and times drew, under a young partition's stale statistics, a nested
	// loop over the keys for each row. So the keys carry a condition true
	// of every flag (1–4) whose selectivity the planner does not know,
	// which makes it expect a few keys: the lookups then win, whatever the
	// table's size and statistics.
	updateFlags = `UPDATE readings r SET qc_flag = k.flag, qc_tests = string_to_array(k.tests, ',')
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int2[], $5::text[]) AS k(station, sensor, ts, flag, tests)
WHERE r.station = k.station AND r.sensor = k.sensor AND r.ts = k.ts AND k.flag BETWEEN 1 AND 4`
)

// pageSize is how many readings a walk reads at once.
const pageSize = 1000

// firstContextPage is how many of the readings before a late one a walk
// reads first for context; each further page is four times the one
// before. Most weather breaks a flat-line run within a few readings, so
// one page usually holds the whole context.
const firstContextPage = 32

// stored is a reading as stored, with its flags before this evaluation.
type stored struct {
	point
	unit  string
	flag  int16
	tests []string
}

// change is a reading whose flags an evaluation changed.
type change struct {
	stored
	result
}

// reading returns the change as a sensorhub.Reading.
func (c change) reading(station, sensor string) sensorhub.Reading {
	return sensorhub.Reading{Station: station, Sensor: sensor, Time: c.Time, Value: c.Value, Unit: c.unit}
}

// state is the processor's saved state of a series: the last reading
// released to it, as the run ending there, and the reading before.
type state struct {
	Prev *point `json:"prev,omitempty"`
	Run  run    `json:"run"`
}

// walk evaluates one series within tx.
type walk struct {
	tx              pgx.Tx
	station, sensor string
	l               limits
	w               walker
	// from is the device time of the first reading whose evaluation
	// counts; readings before are context.
	from time.Time
	// through is the released point: when the walk evaluates the reading
	// there, captured holds the state there.
	through  time.Time
	captured *state
	changes  []change
	stored   map[int64]stored // the stored flags of pushed readings, by µs
	// horizon is the device time of the last reading the walk has read.
	horizon time.Time
	// err is an error of a query the walker made (a companion's readings).
	err error
}

func newWalk(ctx context.Context, tx pgx.Tx, station, sensor string, l limits, through time.Time) *walk {
	k := &walk{tx: tx, station: station, sensor: sensor, l: l, w: walker{l: l}, through: through, stored: map[int64]stored{}}
	if c := l.FlatLine.Companion; c != "" {
		k.w.companion = (&companionReadings{ctx: ctx, k: k, sensor: c}).seen
	}
	return k
}

// push feeds the walker one reading and records its predecessor's new
// flags if they changed.
func (k *walk) push(s stored) {
	k.stored[s.Time.UnixMicro()] = s
	done, res, ok := k.w.push(s.point)
	k.record(done, res, ok)
	if !k.through.IsZero() && s.Time.Equal(k.through) {
		st := state{Run: k.w.run}
		if k.w.prev != nil {
			p := point{Time: k.w.prev.Time, Value: k.w.prev.Value}
			st.Prev = &p
		}
		k.captured = &st
	}
}

// finish evaluates the last reading pushed, which has no successor.
func (k *walk) finish() {
	done, res, ok := k.w.finish()
	k.record(done, res, ok)
}

func (k *walk) record(p point, res result, ok bool) {
	if !ok || p.Time.Before(k.from) {
		return
	}
	s := k.stored[p.Time.UnixMicro()]
	delete(k.stored, p.Time.UnixMicro())
	if !res.equal(s.flag, s.tests) {
		k.changes = append(k.changes, change{stored: s, result: res})
	}
}

// fast evaluates the readings released now, rs, from the saved state st
// of the series and rows, the stored readings from the last one released
// before (st.Run.Last) to the last of rs and the one after: that last one
// released before is evaluated again with its successor. It reports false,
// having done nothing, when that reading is no longer stored.
func (k *walk) fast(st state, rs []sensorhub.Reading, rows []stored) bool {
	if len(rows) == 0 || !rows[0].Time.Equal(st.Run.Last) {
		return false
	}
	k.from, k.horizon = st.Run.Last, rows[len(rows)-1].Time
	k.w.prev, k.w.run = st.Prev, st.Run
	first := rows[0]
	k.stored[first.Time.UnixMicro()] = first
	k.w.cur = &first.point
	for _, r := range rows[1:] {
		k.push(r)
	}
	if last := rows[len(rows)-1]; !last.Time.After(rs[len(rs)-1].Time) {
		k.finish()
	}
	return true
}

// first evaluates the first readings released of a series without a
// saved state, from lo, the first of them, to hi, the last, as general
// does: before is the context before lo in device-time order (see
// context), rows the stored readings in [lo, hi] and the one after. As on
// the fast path, readings after hi are evaluated when they are released.
func (k *walk) first(lo, hi time.Time, before, rows []stored) {
	k.from = lo
	if len(before) > 0 {
		k.from, k.horizon = before[len(before)-1].Time, before[len(before)-1].Time
	}
	for _, s := range slices.Concat(before, rows) {
		k.push(s)
	}
	if len(rows) > 0 {
		k.horizon = rows[len(rows)-1].Time
	}
	if len(rows) == 0 || !rows[len(rows)-1].Time.After(hi) {
		k.finish()
	}
}

// stretches reads, for the series of each walk, the stored readings in
// [los[i], his[i]] and the one after, in one query.
func stretches(ctx context.Context, tx pgx.Tx, walks []*walk, los, his []time.Time) ([][]stored, error) {
	return perSeries(ctx, tx, "readings", selectStretches, walks, los, his)
}

// contexts reads, for the series of each walk, up to firstContextPage of
// its stored readings before los[i], the latest first, in one query: the
// first page that context reads.
func contexts(ctx context.Context, tx pgx.Tx, walks []*walk, los []time.Time) ([][]stored, error) {
	return perSeries(ctx, tx, "context", selectContexts, walks, los, firstContextPage)
}

// perSeries runs sql with the stations and the sensors of walks, then
// args, and collects its rows, whose first column numbers the walk from
// 1, into a list per walk; what names the rows in errors.
func perSeries(ctx context.Context, tx pgx.Tx, what, sql string, walks []*walk, args ...any) ([][]stored, error) {
	stations, sensors := make([]string, len(walks)), make([]string, len(walks))
	for i, k := range walks {
		stations[i], sensors[i] = k.station, k.sensor
	}
	rows, err := tx.Query(ctx, sql, append([]any{stations, sensors}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("qc: read %s: %w", what, err)
	}
	out := make([][]stored, len(walks))
	var (
		i int64
		s stored
	)
	if _, err := pgx.ForEachRow(rows, []any{&i, &s.Time, &s.Value, &s.unit, &s.flag, &s.tests, &s.manual}, func() error {
		out[i-1] = append(out[i-1], s)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("qc: read %s: %w", what, err)
	}
	return out, nil
}

// general evaluates the readings in [lo, hi], the one before lo, and those
// after hi whose evaluation may depend on readings up to hi: the one after
// hi, those whose flat-line run reaches back to hi, and those of the run
// that the first reading after hi starts, which a reading in [lo, hi] may
// have split from a run that reached back before it. It stops at the
// first run that a reading after hi breaks: from there on the runs, the
// neighbours and so the evaluations are the same with or without the
// readings up to hi.
func (k *walk) general(ctx context.Context, lo, hi time.Time) error {
	before, err := k.context(ctx, lo)
	if err != nil {
		return err
	}
	k.from = lo
	if len(before) > 0 {
		k.from, k.horizon = before[len(before)-1].Time, before[len(before)-1].Time
	}
	for _, s := range before {
		k.push(s)
	}
	for after := lo; ; {
		page, err := k.query(ctx, selectPage, k.station, k.sensor, after, pageSize)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			k.horizon = page[len(page)-1].Time
		}
		for _, s := range page {
			prevAfterHi := k.w.cur != nil && k.w.cur.Time.After(hi)
			k.push(s)
			if prevAfterHi && k.w.run.Count == 1 {
				return k.err // s breaks the run after hi: nothing from here on depends on [lo, hi]
			}
		}
		if len(page) < pageSize {
			k.finish()
			return k.err
		}
		after = page[len(page)-1].Time.Add(time.Microsecond)
	}
}

// context returns, in device-time order, the stored readings before lo
// that the evaluation from lo's predecessor on depends on: those of the
// flat-line run that holds the predecessor and the one before the run,
// which breaks it; but, of those more than the flat-line period and the
// gap before the predecessor, only the ones among its last
// FlatLine.Count + 2, as a run that long is flagged however long it is.
// It reads backwards in growing pages, so that it reads few readings past
// the run's start.
func (k *walk) context(ctx context.Context, lo time.Time) ([]stored, error) {
	var out []stored // the latest first
	for before, size := lo, firstContextPage; ; size *= 4 {
		page, err := k.query(ctx, selectBefore, k.station, k.sensor, before, size)
		if err != nil {
			return nil, err
		}
		var complete bool
		if out, complete = k.extendContext(out, page, size); complete {
			break
		}
		before = page[len(page)-1].Time
	}
	slices.Reverse(out)
	return out, nil
}

// extendContext adds to out, the context read so far (the latest first),
// the readings of page, the next size readings before them (the latest
// first), up to where the context ends, and says whether it ended: at the
// reading that breaks the run, past the span, or at the series' first
// reading (a page shorter than size).
func (k *walk) extendContext(out, page []stored, size int) ([]stored, bool) {
	span := k.l.FlatLine.Period + k.l.Gap()
	for _, s := range page {
		if n := len(out); n > k.l.FlatLine.Count+1 && s.Time.Before(out[0].Time.Add(-span)) {
			return out, true
		}
		out = append(out, s)
		if n := len(out); n > 1 && breaks(k.l, s.point, out[n-2].point) {
			return out, true
		}
	}
	return out, len(page) < size
}

// query reads stored readings.
func (k *walk) query(ctx context.Context, sql string, args ...any) ([]stored, error) {
	rows, err := k.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("qc: read %s/%s: %w", k.station, k.sensor, err)
	}
	var (
		s   stored
		out []stored
	)
	_, err = pgx.ForEachRow(rows, []any{&s.Time, &s.Value, &s.unit, &s.flag, &s.tests, &s.manual}, func() error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("qc: read %s/%s: %w", k.station, k.sensor, err)
	}
	return out, nil
}

// save stores the flags the walks changed, in one statement.
func save(ctx context.Context, tx pgx.Tx, walks []*walk) error {
	var (
		stations, sensors, tests []string
		times                    []time.Time
		flags                    []int16
	)
	for _, k := range walks {
		for _, c := range k.changes {
			stations, sensors, times = append(stations, k.station), append(sensors, k.sensor), append(times, c.Time)
			flags, tests = append(flags, c.result.flag), append(tests, strings.Join(c.result.tests, ","))
		}
	}
	if len(times) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, updateFlags, stations, sensors, times, flags, tests); err != nil {
		return fmt.Errorf("qc: store flags: %w", err)
	}
	return nil
}

// events returns the events announcing the walk's changes, in device-time
// order; the usual first evaluation as pass (2 → 1) is not news.
func (k *walk) events() ([]sensorhub.Event, error) {
	slices.SortFunc(k.changes, func(a, b change) int { return a.Time.Compare(b.Time) })
	var events []sensorhub.Event
	for _, c := range k.changes {
		if c.stored.flag == sensorhub.FlagNotEvaluated && c.result.flag == sensorhub.FlagPass {
			continue
		}
		e, err := flaggedEvent(k.station, k.sensor, c)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

// failChanged returns the changed readings that became or stopped being
// fail (4): what is computed from readings leaves those flagged 4 out.
func (k *walk) failChanged() []sensorhub.Reading {
	var out []sensorhub.Reading
	for _, c := range k.changes {
		if (c.stored.flag == sensorhub.FlagFail) != (c.result.flag == sensorhub.FlagFail) {
			out = append(out, c.reading(k.station, k.sensor))
		}
	}
	return out
}
