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
    WHERE m.station = r.station AND m.sensor = r.sensor AND r.ts >= m.valid_from AND r.ts < m.valid_to), 0)`

const (
	// selectStretch returns the readings of a series in [$3, $4] and the
	// one after $4.
	selectStretch = `(SELECT ` + columns + ` FROM readings r WHERE r.station = $1 AND r.sensor = $2 AND r.ts >= $3 AND r.ts <= $4)
UNION ALL
(SELECT ` + columns + ` FROM readings r WHERE r.station = $1 AND r.sensor = $2 AND r.ts > $4 ORDER BY r.ts LIMIT 1)
ORDER BY 1`

	// selectContext returns the readings before $3 that the evaluation of
	// the readings from the one before $3 on depends on: those at most $4
	// µs before that one, and the last $5 + 1 at least.
	selectContext = `SELECT ` + columns + ` FROM readings r
WHERE r.station = $1 AND r.sensor = $2 AND r.ts < $3 AND r.ts >= least(
  (SELECT max(ts) FROM readings WHERE station = $1 AND sensor = $2 AND ts < $3) - $4 * interval '1 microsecond',
  coalesce((SELECT ts FROM readings WHERE station = $1 AND sensor = $2 AND ts < $3 ORDER BY ts DESC OFFSET $5 LIMIT 1), '-infinity'))
ORDER BY r.ts`

	// selectPage returns up to $4 readings of a series from $3 on.
	selectPage = `SELECT ` + columns + ` FROM readings r WHERE r.station = $1 AND r.sensor = $2 AND r.ts >= $3 ORDER BY r.ts LIMIT $4`

	// updateFlags stores the flags that changed; tests travel joined by
	// commas (test names have none).
	updateFlags = `UPDATE readings r SET qc_flag = k.flag, qc_tests = string_to_array(k.tests, ',')
FROM unnest($3::timestamptz[], $4::int2[], $5::text[]) AS k(ts, flag, tests)
WHERE r.station = $1 AND r.sensor = $2 AND r.ts = k.ts`
)

// pageSize is how many readings a walk reads at once.
const pageSize = 1000

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
}

func newWalk(tx pgx.Tx, station, sensor string, l limits, through time.Time) *walk {
	return &walk{tx: tx, station: station, sensor: sensor, l: l, w: walker{l: l}, through: through, stored: map[int64]stored{}}
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
// of the series: the last reading released before them is evaluated again
// with its successor. It reports false, having done nothing, when that
// reading is no longer stored.
func (k *walk) fast(ctx context.Context, st state, rs []sensorhub.Reading) (bool, error) {
	rows, err := k.query(ctx, selectStretch, k.station, k.sensor, st.Run.Last, rs[len(rs)-1].Time)
	if err != nil {
		return false, err
	}
	if len(rows) == 0 || !rows[0].Time.Equal(st.Run.Last) {
		return false, nil
	}
	k.from = st.Run.Last
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
	return true, nil
}

// general evaluates the readings in [lo, hi], the one before lo, and those
// after hi whose evaluation depends on readings up to hi: the one after
// hi and those whose flat-line run reaches back to hi.
func (k *walk) general(ctx context.Context, lo, hi time.Time) error {
	span := k.l.FlatLine.Period + k.l.Gap()
	before, err := k.query(ctx, selectContext, k.station, k.sensor, lo, span.Microseconds(), k.l.FlatLine.Count+1)
	if err != nil {
		return err
	}
	k.from = lo
	if len(before) > 0 {
		k.from = before[len(before)-1].Time
	}
	for _, s := range before {
		k.push(s)
	}
	for after := lo; ; {
		page, err := k.query(ctx, selectPage, k.station, k.sensor, after, pageSize)
		if err != nil {
			return err
		}
		for _, s := range page {
			prevAfterHi := k.w.cur != nil && k.w.cur.Time.After(hi)
			k.push(s)
			if s.Time.After(hi) && prevAfterHi && k.w.run.Start.After(hi) {
				return nil // nothing from here on depends on [lo, hi]
			}
		}
		if len(page) < pageSize {
			k.finish()
			return nil
		}
		after = page[len(page)-1].Time.Add(time.Microsecond)
	}
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

// save stores the changed flags and returns the events announcing them.
func (k *walk) save(ctx context.Context) ([]sensorhub.Event, error) {
	if len(k.changes) == 0 {
		return nil, nil
	}
	slices.SortFunc(k.changes, func(a, b change) int { return a.Time.Compare(b.Time) })
	times, flags, tests := make([]time.Time, len(k.changes)), make([]int16, len(k.changes)), make([]string, len(k.changes))
	var events []sensorhub.Event
	for i, c := range k.changes {
		times[i], flags[i], tests[i] = c.Time, c.result.flag, strings.Join(c.result.tests, ",")
		if c.stored.flag == sensorhub.FlagNotEvaluated && c.result.flag == sensorhub.FlagPass {
			continue // the usual first evaluation: not news
		}
		e, err := flaggedEvent(k.station, k.sensor, c)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if _, err := k.tx.Exec(ctx, updateFlags, k.station, k.sensor, times, flags, tests); err != nil {
		return nil, fmt.Errorf("qc: store flags of %s/%s: %w", k.station, k.sensor, err)
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
