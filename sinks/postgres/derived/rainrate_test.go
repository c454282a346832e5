package derived_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

// rainFlagger stands in for quality control before the processor, on the
// rain series: it flags fail (4) a rain reading of 1.9 mm or more when it
// is released (as a range test does), and the rain readings of the 20 s
// before a reading of exactly 0.35 mm (a rule that needs a later reading,
// so that it flags readings already processed), and reports them with
// Series.Revise, as quality control does.
type rainFlagger struct{}

func (rainFlagger) Name() string { return "rainflag" }

func (rainFlagger) Watches(context.Context, pgx.Tx) (func(string) bool, error) {
	return func(s string) bool { return s == "rain" }, nil
}

func (rainFlagger) Process(ctx context.Context, tx pgx.Tx, s *postgres.Series) error {
	for _, r := range slices.Concat(s.Readings, s.Late) {
		rows, err := tx.Query(ctx, `UPDATE readings r SET qc_flag = 4
WHERE r.station = $1 AND r.sensor = 'rain' AND r.qc_flag <> 4
  AND ((r.ts = $2 AND r.value BETWEEN 1.9 AND 100) OR ($3 = 0.35 AND r.ts >= $2::timestamptz - interval '20 s' AND r.ts < $2))
RETURNING r.ts, r.value, r.unit`, s.Station, r.Time, r.Value)
		if err != nil {
			return err
		}
		flagged, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sensorhub.Reading, error) {
			x := sensorhub.Reading{Station: s.Station, Sensor: s.Sensor}
			return x, row.Scan(&x.Time, &x.Value, &x.Unit)
		})
		if err != nil {
			return err
		}
		s.Revise(flagged...)
	}
	return nil
}

// rainReadings returns about 45 minutes of rain inputs of three stations,
// in device-time order: "a" sends rain amounts every ~8 s (twentieths of
// a millimetre), "b" rain amounts and a running
// total (some at the same times, whose amounts the device's replace), "c"
// only a running total, with resets and glitches.
func rainReadings(rng *rand.Rand) []sensorhub.Reading {
	var out []sensorhub.Reading
	add := func(station, sensor string, s, v float64) {
		out = append(out, sensorhub.Reading{Station: station, Sensor: sensor, Time: at(s).Truncate(time.Millisecond), Value: v, Unit: "mm"})
	}
	amount := func() float64 { return float64(rng.IntN(40)) / 20 }
	for s := 0.0; s < 2700; s += 2 + rng.Float64()*12 {
		add("a", "rain", s, amount())
	}
	for _, st := range []string{"b", "c"} {
		total := 20.0
		for s := 0.0; s < 2700; s += 5 + rng.Float64()*40 {
			switch rng.IntN(15) {
			case 0: // reset
				total = 0
			case 1: // glitch: this reading only
				add(st, "rain_total", s, 0)
				continue
			default:
				total += float64(rng.IntN(4)) * 0.1
			}
			add(st, "rain_total", s, total)
			if st == "b" && rng.IntN(5) == 0 {
				add(st, "rain", s, amount())
			}
		}
	}
	for s := 0.0; s < 2700; s += 3 + rng.Float64()*20 {
		add("b", "rain", s, amount())
	}
	slices.SortStableFunc(out, func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) })
	return out
}

// arrival reorders readings as a network does: most in order, some a few
// seconds out of order (within the reorder window), some minutes late,
// some twice.
func arrival(rng *rand.Rand, readings []sensorhub.Reading) []sensorhub.Reading {
	type arriving struct {
		at float64
		r  sensorhub.Reading
	}
	var as []arriving
	for _, r := range readings {
		t := r.Time.Sub(base).Seconds()
		switch n := rng.IntN(20); {
		case n == 0:
			t += 60 + rng.Float64()*300 // late
		case n < 5:
			t += rng.Float64() * 8
		}
		as = append(as, arriving{t, r})
		if rng.IntN(25) == 0 {
			as = append(as, arriving{t + rng.Float64()*100, r})
		}
	}
	slices.SortStableFunc(as, func(a, b arriving) int { return cmpFloat(a.at, b.at) })
	out := make([]sensorhub.Reading, len(as))
	for i, a := range as {
		out[i] = a.r
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestRainRateIsTheDefinition stores rain inputs in arrival order, in
// batches of random sizes, with random flushes, restarts of the sink and
// its processors, quality flags set on release and on readings already
// processed, flags set and lifted by hand (the qc.Follower path), and a
// calibration of the rain (the calibration.Follower path); then every
// stored rain_rate must be, bit for bit, the definition computed from
// scratch over the final table: the sum, as numeric, of the station's rain
// readings not flagged fail in (t − W, t], times 1 h / W, at every such
// rain reading, and nowhere else.
func TestRainRateIsTheDefinition(t *testing.T) {
	t.Parallel()
	for _, w := range []time.Duration{7 * time.Minute, 2*time.Minute + 500*time.Millisecond} {
		t.Run(w.String(), func(t *testing.T) {
			t.Parallel()
			seed := time.Now().UnixNano()
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(uint64(seed), 5))
			db := postgrestest.New(t)
			cfg := derived.Config{RainRateWindow: w}
			var (
				sink *postgres.Sink
				proc *derived.Processor
			)
			start := func() { // a restart: new processors, the state in the table
				var err error
				if proc, err = derived.New(cfg); err != nil {
					t.Fatal(err)
				}
				if sink, err = postgres.New(postgres.Config{DB: db.Pool, Processors: []postgres.Processor{rainFlagger{}, proc}}); err != nil {
					t.Fatal(err)
				}
			}
			start()
			readings := arrival(rng, rainReadings(rng))
			calibrated := false
			for len(readings) > 0 {
				n := min(len(readings), 1+rng.IntN(25))
				if _, err := sink.Write(t.Context(), sensorhub.Batch{Readings: readings[:n]}); err != nil {
					t.Fatal(err)
				}
				newest := readings[n-1].Time
				readings = readings[n:]
				switch rng.IntN(20) {
				case 0, 1:
					if _, err := sink.Flush(t.Context(), 0); err != nil {
						t.Fatal(err)
					}
				case 2:
					start()
				case 3, 4:
					flagByHand(t, db, proc, rng, newest)
				}
				if !calibrated && newest.Sub(base) > 25*time.Minute {
					calibrated = true
					store, err := calibration.New(calibration.Config{DB: db.Pool, Followers: []calibration.Follower{proc}})
					if err != nil {
						t.Fatal(err)
					}
					from := newest.Add(-time.Duration(rng.IntN(600)) * time.Second)
					if _, _, err := store.Add(t.Context(), calibration.Calibration{Station: "a", Sensor: "rain", From: from, To: from.Add(5 * time.Minute), Scale: 1.1, Offset: 0.05}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := sink.Flush(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
			checkRainRates(t, db, w, 500)
		})
	}
}

// flagByHand sets or lifts the fail flag of a random stretch of the rain
// of station a or b before newest, as `sensorhub qc flag` and `qc
// rebuild` do, and has the processor follow (qc.Follower).
func flagByHand(t *testing.T, db *postgrestest.DB, proc *derived.Processor, rng *rand.Rand, newest time.Time) {
	t.Helper()
	ctx := t.Context()
	station := []string{"a", "b"}[rng.IntN(2)]
	to := newest.Add(-time.Duration(rng.IntN(300)) * time.Second)
	from := to.Add(-time.Duration(30+rng.IntN(200)) * time.Second)
	flag := []int{1, 4}[rng.IntN(2)]
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := postgres.LockStation(ctx, tx, station); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `UPDATE readings SET qc_flag = $4
WHERE station = $1 AND sensor = 'rain' AND ts >= $2 AND ts < $3 AND (qc_flag = 4) <> ($4 = 4)
RETURNING ts, value, unit`, station, from, to, flag)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sensorhub.Reading, error) {
		x := sensorhub.Reading{Station: station, Sensor: "rain"}
		return x, row.Scan(&x.Time, &x.Value, &x.Unit)
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(changed, func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) })
	if len(changed) > 0 {
		if _, err := proc.FollowFlags(ctx, tx, qc.Reflagged{Station: station, Sensor: "rain", Readings: changed}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkRainRates compares the stored rain_rate readings with the
// definition computed from scratch, exactly; there must be atLeast.
func checkRainRates(t *testing.T, db *postgrestest.DB, w time.Duration, atLeast int) {
	t.Helper()
	type rate struct {
		station string
		ts      time.Time
		value   float64
	}
	scan := func(row pgx.CollectableRow) (rate, error) {
		var r rate
		err := row.Scan(&r.station, &r.ts, &r.value)
		return r, err
	}
	rows, err := db.Pool.Query(t.Context(), `SELECT r.station, r.ts,
  (SELECT sum(x.value::numeric) FROM readings x WHERE x.station = r.station AND x.sensor = 'rain' AND x.qc_flag <> 4
     AND x.ts > r.ts - $1::interval AND x.ts <= r.ts)::float8 * $2::float8
FROM readings r WHERE r.sensor = 'rain' AND r.qc_flag <> 4 ORDER BY 1, 2`, w, float64(time.Hour)/float64(w))
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, scan)
	if err != nil {
		t.Fatal(err)
	}
	rows, err = db.Pool.Query(t.Context(), `SELECT station, ts, value FROM readings WHERE sensor = 'rain_rate' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, scan)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b rate) bool {
		return a.station == b.station && a.ts.Equal(b.ts) &&
			(math.Float64bits(a.value) == math.Float64bits(b.value) || math.IsNaN(a.value) && math.IsNaN(b.value))
	}
	if len(want) < atLeast {
		t.Fatalf("only %d rain readings: the test sends too few", len(want))
	}
	bad := 0
	for i, j := 0, 0; i < len(want) || j < len(got); {
		switch {
		case i < len(want) && j < len(got) && same(want[i], got[j]):
			i, j = i+1, j+1
			continue
		case j == len(got) || i < len(want) && (want[i].station < got[j].station || want[i].station == got[j].station && want[i].ts.Before(got[j].ts)):
			t.Errorf("%s at %s: no rain_rate, want %v", want[i].station, want[i].ts.UTC().Format(time.TimeOnly+".000"), want[i].value)
			i++
		case i == len(want) || want[i].station != got[j].station || !want[i].ts.Equal(got[j].ts):
			t.Errorf("%s at %s: rain_rate %v without a rain reading", got[j].station, got[j].ts.UTC().Format(time.TimeOnly+".000"), got[j].value)
			j++
		default:
			t.Errorf("%s at %s: rain_rate %v (%#x), want %v (%#x)", got[j].station, got[j].ts.UTC().Format(time.TimeOnly+".000"),
				got[j].value, math.Float64bits(got[j].value), want[i].value, math.Float64bits(want[i].value))
			i, j = i+1, j+1
		}
		if bad++; bad == 20 {
			t.Fatal("and more")
		}
	}
	t.Logf("%d rain rates, as defined", len(got))
}

// TestRainRateOfAmountsAheadOfTheRain has a station send running totals,
// and now and then a rain amount of its own that lags them, so that the
// device's rain arrives, in order but new to the sink, for times whose
// rates the amounts computed from the totals already had: the rates are
// the definition.
func TestRainRateOfAmountsAheadOfTheRain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{RainRateWindow: 2 * time.Minute})
	write := func(sensor string, from, to float64) {
		for s := from; s < to; s += 10 {
			r := sensorhub.Reading{Station: "m", Sensor: sensor, Time: at(s), Value: 10 + math.Floor(s/7)*0.1, Unit: "mm"}
			if sensor == "rain" {
				r.Value = 0.35
			}
			f.write(r)
		}
	}
	write("rain_total", 0, 600)
	f.flush()
	write("rain", 585, 586) // the station's first: its rain cursor starts
	write("rain_total", 600, 1100)
	write("rain", 885, 886) // releases 585
	f.flush()
	checkRainRates(t, f.db, 2*time.Minute, 100)
}

// TestRainRateOfAmountsBehindTheRain has a station send its own rain
// amounts for ten minutes, then running totals for the first five: the
// amounts computed from them change the rates of the device's amounts
// released long before, up to a window after the last.
func TestRainRateOfAmountsBehindTheRain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{RainRateWindow: 2 * time.Minute})
	for _, sensor := range []string{"rain", "rain_total"} {
		for s := 3.0; s < map[string]float64{"rain": 600, "rain_total": 300}[sensor]; s += 10 {
			r := sensorhub.Reading{Station: "m", Sensor: sensor, Time: at(s), Value: 0.35, Unit: "mm"}
			if sensor == "rain_total" {
				r.Time, r.Value = at(s+2), 10+math.Floor(s/7)*0.1
			}
			f.write(r)
		}
		f.flush()
	}
	checkRainRates(t, f.db, 2*time.Minute, 80)
}

// TestRainRateNotFinite stores rain amounts that are NaN or infinite, as
// only a sink without events can (events carry JSON numbers), in order,
// some batches longer than the window: the rates are the definition, the
// numeric sum's (NaN with NaN, or with both infinities; else the
// infinity), and finite again once those left the window.
func TestRainRateNotFinite(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	proc, err := derived.New(derived.Config{RainRateWindow: time.Minute, DisableEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := postgres.New(postgres.Config{DB: db.Pool, DisableEvents: true, Processors: []postgres.Processor{proc}})
	if err != nil {
		t.Fatal(err)
	}
	special := map[float64]float64{300: math.NaN(), 500: math.Inf(1), 520: math.Inf(-1), 800: math.Inf(1), 1000: math.Inf(-1), 1150: math.NaN()}
	var readings []sensorhub.Reading
	for s := 0.0; s < 1500; s += 10 {
		v, ok := special[s]
		if !ok {
			v = math.Mod(s, 0.9)
		}
		readings = append(readings, sensorhub.Reading{Station: "n", Sensor: "rain", Time: at(s), Value: v, Unit: "mm"})
	}
	for i := 0; len(readings) > 0; i++ {
		n := min(len(readings), []int{3, 15, 2, 9}[i%4])
		if _, err := sink.Write(t.Context(), sensorhub.Batch{Readings: readings[:n]}); err != nil {
			t.Fatal(err)
		}
		readings = readings[n:]
	}
	if _, err := sink.Flush(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	checkRainRates(t, db, time.Minute, 150)
}
