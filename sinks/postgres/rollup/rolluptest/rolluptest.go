// Package rolluptest checks the rollup tables against an oracle: every
// rollup recomputed from scratch in Go, from the readings as stored,
// independently of package rollup's SQL. Tests of anything that writes
// readings call Settle, to wait for the workers, then Check.
//
//	rolluptest.Settle(t, ctx, pool, time.Minute)
//	rolluptest.Check(t, ctx, pool, "UTC", handlers.Builtin())
package rolluptest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Tolerance bounds the relative difference of floats between the oracle's
// sums, taken in device-time order, and the database's, taken in bucket
// order: far above rounding, far below any real difference.
const Tolerance = 1e-9

// Check compares the three rollup tables with the oracle's recomputation
// from readings and fails t for every difference (the first 20 are
// shown): a bucket missing or extra, a count or time not equal, a float
// not within Tolerance. zone is the default zone of stations without one,
// types the registered sensor types; the expected intervals are
// sensor_status's. It returns the number of rows of each table.
func Check(t testing.TB, ctx context.Context, pool *pgxpool.Pool, zone string, types []sensorhub.SensorType) [3]int {
	t.Helper()
	want := expectedRollups(readStored(t, ctx, pool), zonesOf(t, ctx, pool, zone), types, intervalsOf(t, ctx, pool))
	got := readRollups(t, ctx, pool)
	if differing := compareRollups(t, want, got); len(differing) > 0 {
		logBuckets(t, ctx, pool, differing)
	}
	return [3]int{len(got[0]), len(got[1]), len(got[2])}
}

// Settle waits until no invalidation or day rebuild is pending, failing t
// after timeout.
func Settle(t testing.TB, ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rollup_invalidations) + (SELECT count(*) FROM rollup_day_rebuilds)`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rolluptest: %d invalidations still pending after %s", pending, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CloseEnough compares floats within Tolerance, relative to the larger
// magnitude (absolute below 1); angles also compare across north, so that
// 359.99… ≈ 0.
func CloseEnough(a, b float64, angle bool) bool { return closeEnough(a, b, angle) }

// zonesOf returns every station's zone, zone for those without one.
func zonesOf(t testing.TB, ctx context.Context, pool *pgxpool.Pool, zone string) map[string]*time.Location {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT id, coalesce(timezone, $1) FROM stations`, zone)
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]*time.Location{}
	var id, name string
	if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		loc, err := time.LoadLocation(name)
		zones[id] = loc
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return zones
}

// intervalsOf returns the expected interval of every series that has one.
func intervalsOf(t testing.TB, ctx context.Context, pool *pgxpool.Pool) map[[2]string]float64 {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT station, sensor, coalesce(interval_s, learned_interval_s) FROM sensor_status
WHERE coalesce(interval_s, learned_interval_s) IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]string]float64{}
	var (
		k [2]string
		v float64
	)
	if _, err := pgx.ForEachRow(rows, []any{&k[0], &k[1], &v}, func() error {
		out[k] = v
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// row is one rollup row; nil pointers are SQL NULLs.
type row struct {
	Count                int64
	Avg, Min, Max, Sum   *float64
	MinTS, MaxTS, LastTS *time.Time
	Last, Coverage       *float64
}

type rowKey struct {
	Station, Sensor string
	Bucket          time.Time
}

// stored is a reading as the table holds it.
type stored struct {
	station, sensor string
	ts              time.Time
	value           float64
	flag            int
}

// expectedRollups computes the three tables from readings. zones holds the
// zone of every station (the default one for those without), kinds the
// registered types, intervals the expected interval of a series in
// seconds.
func expectedRollups(readings []stored, zones map[string]*time.Location, types []sensorhub.SensorType, intervals map[[2]string]float64) [3]map[rowKey]row {
	kind := map[string]sensorhub.Aggregation{}
	weight := map[string]string{}
	for _, t := range types {
		kind[t.Name], weight[t.Name] = cmp.Or(t.Aggregation, sensorhub.AggregateInstant), t.WeightedBy
	}
	byKey := map[[2]string]map[time.Time]float64{} // (station, sensor) → ts → value, flag 4 left out
	for _, r := range readings {
		if r.flag == 4 {
			continue
		}
		k := [2]string{r.station, r.sensor}
		if byKey[k] == nil {
			byKey[k] = map[time.Time]float64{}
		}
		byKey[k][r.ts] = r.value
	}
	var out [3]map[rowKey]row
	for level := range out {
		groups := map[rowKey][]stored{}
		ends := map[rowKey]time.Time{}
		for k, series := range byKey {
			for ts, v := range series {
				start, end := bucketOf(level, ts, zones[k[0]])
				rk := rowKey{k[0], k[1], start}
				groups[rk] = append(groups[rk], stored{station: k[0], sensor: k[1], ts: ts, value: v})
				ends[rk] = end
			}
		}
		out[level] = map[rowKey]row{}
		for rk, rs := range groups {
			slices.SortFunc(rs, func(a, b stored) int { return a.ts.Compare(b.ts) })
			k := kind[rk.Sensor]
			if k == "" {
				k = sensorhub.AggregateInstant
			}
			r := aggregate(k, rs, byKey[[2]string{rk.Station, weight[rk.Sensor]}])
			if iv, ok := intervals[[2]string{rk.Station, rk.Sensor}]; ok {
				c := float64(r.Count) / (ends[rk].Sub(rk.Bucket).Seconds() / iv)
				r.Coverage = &c
			}
			out[level][rk] = r
		}
	}
	return out
}

// bucketOf returns the bucket of ts at level 0 (5 minutes), 1 (hour) or 2
// (the local day in loc).
func bucketOf(level int, ts time.Time, loc *time.Location) (start, end time.Time) {
	switch level {
	case 0:
		start = ts.Truncate(5 * time.Minute)
		return start, start.Add(5 * time.Minute)
	case 1:
		start = ts.Truncate(time.Hour)
		return start, start.Add(time.Hour)
	}
	// The day of the 5-minute bucket's start.
	l := ts.Truncate(5 * time.Minute).In(loc)
	start = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	return start.UTC(), time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc).UTC()
}

// aggregate is one bucket of one kind; rs is in device-time order, weights
// the weight sensor's values by time.
func aggregate(kind sensorhub.Aggregation, rs []stored, weights map[time.Time]float64) row {
	r := row{Count: int64(len(rs))}
	minI, maxI := 0, 0
	sum := 0.0
	for i, x := range rs {
		sum += x.value
		if x.value < rs[minI].value {
			minI = i
		}
		if x.value > rs[maxI].value {
			maxI = i
		}
	}
	switch kind {
	case sensorhub.AggregateInstant:
		avg := sum / float64(len(rs))
		r.Avg, r.Min, r.Max = &avg, &rs[minI].value, &rs[maxI].value
		r.MinTS, r.MaxTS = &rs[minI].ts, &rs[maxI].ts
	case sensorhub.AggregateAmount:
		r.Sum, r.Max, r.MaxTS = &sum, &rs[maxI].value, &rs[maxI].ts
	case sensorhub.AggregateLast:
		last := rs[len(rs)-1]
		r.Last, r.LastTS = &last.value, &last.ts
	case sensorhub.AggregateVector:
		r.Avg = vectorMean(rs, weights)
	}
	return r
}

// vectorMean is the mean direction: weighted by the readings that have a
// weight when any has, else unweighted; nil when the vectors cancel out.
func vectorMean(rs []stored, weights map[time.Time]float64) *float64 {
	var wx, wy, ux, uy float64
	weighted := false
	for _, x := range rs {
		s, c := math.Sincos(x.value * math.Pi / 180)
		ux, uy = ux+s, uy+c
		if w, ok := weights[x.ts]; ok {
			weighted = true
			wx, wy = wx+w*s, wy+w*c
		}
	}
	if weighted {
		ux, uy = wx, wy
	}
	if math.Hypot(ux, uy) < 1e-9 {
		return nil
	}
	d := math.Mod(math.Atan2(ux, uy)*180/math.Pi+360, 360)
	return &d
}

// readRollups reads the three rollup tables.
func readRollups(t testing.TB, ctx context.Context, pool *pgxpool.Pool) [3]map[rowKey]row {
	t.Helper()
	var out [3]map[rowKey]row
	for i, table := range []string{"readings_5m", "readings_1h", "readings_1d"} {
		rows, err := pool.Query(ctx, `SELECT station, sensor, bucket, count, avg, min, max, sum, min_ts, max_ts, last, last_ts, coverage FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = map[rowKey]row{}
		var (
			k rowKey
			r row
		)
		if _, err := pgx.ForEachRow(rows, []any{&k.Station, &k.Sensor, &k.Bucket, &r.Count, &r.Avg, &r.Min, &r.Max, &r.Sum, &r.MinTS, &r.MaxTS, &r.Last, &r.LastTS, &r.Coverage}, func() error {
			k.Bucket = k.Bucket.UTC()
			out[i][k] = r
			r = row{}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// readStored reads every stored reading.
func readStored(t testing.TB, ctx context.Context, pool *pgxpool.Pool) []stored {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT station, sensor, ts, value, qc_flag FROM readings`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out []stored
		s   stored
	)
	if _, err := pgx.ForEachRow(rows, []any{&s.station, &s.sensor, &s.ts, &s.value, &s.flag}, func() error {
		s.ts = s.ts.UTC()
		out = append(out, s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// compareRollups reports every difference between want and got, and
// returns the 5-minute buckets that differ.
func compareRollups(t testing.TB, want, got [3]map[rowKey]row) (differing []rowKey) {
	t.Helper()
	names := []string{"readings_5m", "readings_1h", "readings_1d"}
	problems := 0
	report := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for level := range want {
		for k, w := range want[level] {
			g, ok := got[level][k]
			if !ok {
				report("%s: bucket %s/%s %s missing; want %s", names[level], k.Station, k.Sensor, k.Bucket, w)
			} else if d := diff(w, g); d != "" {
				report("%s: bucket %s/%s %s: %s\n want %s\n got  %s", names[level], k.Station, k.Sensor, k.Bucket, d, w, g)
			} else {
				continue
			}
			if level == 0 {
				differing = append(differing, k)
			}
		}
		for k, g := range got[level] {
			if _, ok := want[level][k]; !ok {
				report("%s: bucket %s/%s %s should not exist; got %s", names[level], k.Station, k.Sensor, k.Bucket, g)
				if level == 0 {
					differing = append(differing, k)
				}
			}
		}
	}
	if problems > 20 {
		t.Errorf("… and %d more differences", problems-20)
	}
	return differing
}

// logBuckets logs the stored readings of the first five of the 5-minute
// buckets keys, each with its flag, partition, arrival and the transaction
// that wrote it: what tells a recomputation that missed a reading from one
// that never ran.
func logBuckets(t testing.TB, ctx context.Context, pool *pgxpool.Pool, keys []rowKey) {
	t.Helper()
	for _, k := range keys[:min(5, len(keys))] {
		rows, err := pool.Query(ctx, `SELECT format('%s = %s, flag %s, derived %s, in %s, received %s by transaction %s',
			ts, value, qc_flag, derived, tableoid::regclass, received_at, xmin)
			FROM readings WHERE station = $1 AND sensor = $2 AND ts >= $3 AND ts < $3 + interval '5 minutes' ORDER BY ts`,
			k.Station, k.Sensor, k.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		readings, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("stored readings of %s/%s %s: %q", k.Station, k.Sensor, k.Bucket, readings)
	}
}

func (r row) String() string {
	f := func(p *float64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	ts := func(p *time.Time) string {
		if p == nil {
			return "null"
		}
		return p.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{count %d avg %s min %s@%s max %s@%s sum %s last %s@%s coverage %s}",
		r.Count, f(r.Avg), f(r.Min), ts(r.MinTS), f(r.Max), ts(r.MaxTS), f(r.Sum), f(r.Last), ts(r.LastTS), f(r.Coverage))
}

// diff names the first field where w and g differ.
func diff(w, g row) string {
	if w.Count != g.Count {
		return "count"
	}
	floats := []struct {
		name string
		w, g *float64
	}{{"avg", w.Avg, g.Avg}, {"min", w.Min, g.Min}, {"max", w.Max, g.Max}, {"sum", w.Sum, g.Sum}, {"last", w.Last, g.Last}, {"coverage", w.Coverage, g.Coverage}}
	for _, f := range floats {
		if (f.w == nil) != (f.g == nil) || f.w != nil && !closeEnough(*f.w, *f.g, f.name == "avg") {
			return f.name
		}
	}
	times := []struct {
		name string
		w, g *time.Time
	}{{"min_ts", w.MinTS, g.MinTS}, {"max_ts", w.MaxTS, g.MaxTS}, {"last_ts", w.LastTS, g.LastTS}}
	for _, f := range times {
		if (f.w == nil) != (f.g == nil) || f.w != nil && !f.w.Equal(*f.g) {
			return f.name
		}
	}
	return ""
}

// closeEnough compares within tolerance, relative to the larger magnitude
// (absolute below 1); an angle also compares across north, 359.99… ≈ 0.
func closeEnough(a, b float64, angle bool) bool {
	d := math.Abs(a - b)
	if angle {
		d = min(d, 360-d)
	}
	return d <= Tolerance*max(1, math.Abs(a), math.Abs(b))
}
