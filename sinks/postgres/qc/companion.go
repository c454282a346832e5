package qc

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// A flat line at zero of a type with a companion (sensorhub.FlatLine) needs
// the companion above zero within it.
const (
	// selectPositives returns the device times of the companion's readings
	// above zero in [$3, $4].
	selectPositives = `SELECT ts FROM readings WHERE station = $1 AND sensor = $2 AND ts >= $3 AND ts <= $4 AND value > 0 ORDER BY ts`

	// selectCalm returns those series k (numbered from 1) that quality
	// control had evaluated up to $3 + $6 µs or later before this
	// transaction (its saved state, table processor_cursors, for the
	// processor $7), with a reading at zero (within $5) in [$3, $4]. The
	// readings it evaluates later read the companion then.
	selectCalm = `SELECT k.i FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::float8[], $6::int8[]) WITH ORDINALITY AS k(station, sensor, lo, hi, tol, gap, i)
WHERE EXISTS (SELECT 1 FROM processor_cursors c WHERE c.processor = $7 AND c.station = k.station AND c.sensor = k.sensor
    AND (c.state->'run'->>'last')::timestamptz >= k.lo + k.gap * interval '1 microsecond')
  AND EXISTS (SELECT 1 FROM readings r WHERE r.station = k.station AND r.sensor = k.sensor AND r.ts >= k.lo AND r.ts <= k.hi AND abs(r.value) <= k.tol)`
)

// companionReadings answers flatLine's companion question for one walk
// from the companion's readings above zero, read a stretch at a time: the
// stretch asked for up to the walk's horizon, so that one query serves the
// readings pushed after.
type companionReadings struct {
	ctx       context.Context
	k         *walk
	sensor    string
	from, to  time.Time // the stretch read; zero before the first
	positives []time.Time
}

// seen reports whether the companion read above zero in [from, to]. An
// error is kept in the walk, which reports it.
func (c *companionReadings) seen(from, to time.Time) bool {
	if c.to.IsZero() || from.Before(c.from) || to.After(c.to) {
		c.from, c.to = from, to
		if c.k.horizon.After(to) {
			c.to = c.k.horizon
		}
		rows, err := c.k.tx.Query(c.ctx, selectPositives, c.k.station, c.sensor, c.from, c.to)
		if err == nil {
			c.positives, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
		}
		if err != nil {
			c.k.err = fmt.Errorf("qc: read %s/%s: %w", c.k.station, c.sensor, err)
			c.to = time.Time{}
			return false
		}
	}
	i := sort.Search(len(c.positives), func(i int) bool { return !c.positives[i].Before(from) })
	return i < len(c.positives) && !c.positives[i].After(to)
}

// dependent is a series whose flat-line test reads the series of a batch
// as its companion, and the stretch of that series' readings above zero.
type dependent struct {
	companion int // index of the companion's series in the batch
	station   string
	sensor    string
	l         limits
	lo, hi    time.Time
}

// dependents returns the series whose flat lines at zero the readings
// above zero of series may change, with a reading at zero near them.
func (p *Processor) dependents(ctx context.Context, tx pgx.Tx, snap *snapshot, series []seriesReadings) ([]dependent, error) {
	var cands []dependent
	for i, s := range series {
		var lo, hi time.Time
		for _, r := range s.all {
			if r.Value > 0 {
				if lo.IsZero() || r.Time.Before(lo) {
					lo = r.Time
				}
				if r.Time.After(hi) {
					hi = r.Time
				}
			}
		}
		if lo.IsZero() {
			continue
		}
		for _, sensor := range p.companionOf[s.sensor] {
			l := snap.limits(p.declared, s.station, sensor)
			if l.FlatLine.Companion == s.sensor && l.FlatLine.On() {
				cands = append(cands, dependent{companion: i, station: s.station, sensor: sensor, l: l, lo: lo, hi: hi})
			}
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	stations, sensors := make([]string, len(cands)), make([]string, len(cands))
	los, his, tols := make([]time.Time, len(cands)), make([]time.Time, len(cands)), make([]float64, len(cands))
	gaps := make([]int64, len(cands))
	for i, d := range cands {
		// A run at zero that holds a companion reading has a reading within
		// MaxGap of it; it was evaluated before only if the series was
		// evaluated past that reading.
		stations[i], sensors[i], los[i], his[i], tols[i] = d.station, d.sensor, d.lo.Add(-d.l.Gap()), d.hi.Add(d.l.Gap()), d.l.FlatLine.Tolerance
		gaps[i] = d.l.Gap().Microseconds()
	}
	rows, err := tx.Query(ctx, selectCalm, stations, sensors, los, his, tols, gaps, Name)
	if err != nil {
		return nil, fmt.Errorf("qc: find calm series: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("qc: find calm series: %w", err)
	}
	out := make([]dependent, len(found))
	for j, i := range found {
		out[j] = cands[i-1]
	}
	return out, nil
}

// seriesReadings is what dependents needs of a series of the batch.
type seriesReadings struct {
	station, sensor string
	all             []sensorhub.Reading // released and late
}
