package derived_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// spikeFlagger stands in for quality control before the processor: it
// flags fail (4) a humidity reading that a humidity reading within 30 s
// after it differs from by more than 30 %RH, a rule of the stored
// readings alone, and reports flags of readings already processed with
// Series.Revise, as quality control does.
type spikeFlagger struct{}

func (spikeFlagger) Name() string { return "spike" }

func (spikeFlagger) Watches(context.Context, pgx.Tx) (func(string) bool, error) {
	return func(s string) bool { return s == "humidity" }, nil
}

func (spikeFlagger) Process(ctx context.Context, tx pgx.Tx, s *postgres.Series) error {
	for _, r := range slices.Concat(s.Readings, s.Late) {
		rows, err := tx.Query(ctx, `UPDATE readings r SET qc_flag = 4
WHERE r.station = $1 AND r.sensor = 'humidity' AND r.ts BETWEEN $2::timestamptz - interval '30 s' AND $2 AND r.qc_flag <> 4
  AND EXISTS (SELECT FROM readings n WHERE n.station = r.station AND n.sensor = r.sensor
              AND n.ts > r.ts AND n.ts <= r.ts + interval '30 s' AND abs(n.value - r.value) > 30)
RETURNING r.ts, r.value, r.unit`, s.Station, r.Time)
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

// propertyReadings returns a random hour of two stations' inputs: every
// type the processor reads, at irregular times, humidity with spikes,
// running totals with resets and glitches, and device rain at s2.
func propertyReadings(rng *rand.Rand) []sensorhub.Reading {
	var out []sensorhub.Reading
	add := func(station, sensor string, every float64, value func(i int) float64) {
		s := 0.0
		for i := 0; s < 3600; i++ {
			out = append(out, sensorhub.Reading{Station: station, Sensor: sensor, Time: at(s).Truncate(time.Millisecond),
				Value: value(i), Unit: unitOf[sensor]})
			s += every * (0.3 + rng.Float64()*1.4)
		}
	}
	for _, st := range []string{"s1", "s2"} {
		add(st, "temperature", 40, func(int) float64 { return -10 + rng.Float64()*45 })
		add(st, "humidity", 55, func(int) float64 {
			if rng.IntN(8) == 0 {
				return 99
			}
			return 10 + rng.Float64()*50
		})
		add(st, "wind_speed", 70, func(int) float64 { return rng.Float64() * 12 })
		add(st, "pressure", 120, func(int) float64 { return 950 + rng.Float64()*60 })
		add(st, "solar_radiation", 90, func(int) float64 { return rng.Float64() * 900 })
		total := 100.0
		add(st, "rain_total", 60, func(int) float64 {
			switch rng.IntN(12) {
			case 0: // reset
				total = 0
			case 1: // glitch: this reading only
				return 0
			default:
				total += float64(rng.IntN(3)) * 0.2
			}
			return total
		})
	}
	add("s2", "rain", 100, func(int) float64 { return float64(rng.IntN(4)) * 0.1 })
	return out
}

// runProperty stores readings in the order given, in batches of random
// sizes with random flushes, through a fresh schema, checks the rain rates
// against their definition, and returns the derived rows.
func runProperty(t *testing.T, rng *rand.Rand, readings []sensorhub.Reading) []row {
	t.Helper()
	db := postgrestest.New(t)
	if _, err := db.Pool.Exec(t.Context(), `INSERT INTO stations (id, elevation_m) VALUES ('s1', 420), ('s2', NULL)`); err != nil {
		t.Fatal(err)
	}
	proc, err := derived.New(derived.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Processors: []postgres.Processor{spikeFlagger{}, proc}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, sink: sink, proc: proc}
	for len(readings) > 0 {
		n := min(len(readings), 1+rng.IntN(40))
		f.write(readings[:n]...)
		readings = readings[n:]
		if rng.IntN(4) == 0 {
			f.flush()
		}
	}
	f.flush()
	checkRainRates(t, db, derived.DefaultRainRateWindow, 1)
	return f.rows(derivedSensors...)
}

// TestTwoInstancesConcurrently stores the readings shuffled, with
// duplicates, through two sinks with processors of their own on one
// database, writing and flushing at once, as two replicas do: the
// derived readings are those of the in-order run, and the rain rates
// their definition.
func TestTwoInstancesConcurrently(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	readings := propertyReadings(rng)
	sorted := slices.Clone(readings)
	slices.SortFunc(sorted, func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) })
	want := runProperty(t, rng, sorted)

	db := postgrestest.New(t)
	if _, err := db.Pool.Exec(t.Context(), `INSERT INTO stations (id, elevation_m) VALUES ('s1', 420), ('s2', NULL)`); err != nil {
		t.Fatal(err)
	}
	shuffled := slices.Clone(readings)
	shuffled = append(shuffled, shuffled[:len(shuffled)/5]...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	errs := make(chan error, 2)
	for w := range 2 {
		proc, err := derived.New(derived.Config{})
		if err != nil {
			t.Fatal(err)
		}
		sink, err := postgres.New(postgres.Config{DB: db.Pool, Processors: []postgres.Processor{spikeFlagger{}, proc}})
		if err != nil {
			t.Fatal(err)
		}
		mine := shuffled[w*len(shuffled)/2 : (w+1)*len(shuffled)/2]
		go func() { errs <- writeAll(t.Context(), sink, mine, rand.New(rand.NewPCG(uint64(seed), uint64(w)))) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkRainRates(t, db, derived.DefaultRainRateWindow, 1)
	f := &fixture{t: t, db: db}
	if got := f.rows(derivedSensors...); diff(want, got) != "" {
		t.Errorf("derived readings of two instances differ from the in-order run:\n%s", diff(want, got))
	}
}

// writeAll writes readings in random batches with random flushes, and
// flushes at the end, retrying what fails transiently (a deadlock between
// the two instances is retried, as the hub does).
func writeAll(ctx context.Context, sink *postgres.Sink, readings []sensorhub.Reading, rng *rand.Rand) error {
	retry := func(op func() error) error {
		var err error
		for range 20 {
			if err = op(); err == nil || sensorhub.IsPermanent(err) {
				return err
			}
		}
		return err
	}
	for len(readings) > 0 {
		n := min(len(readings), 1+rng.IntN(40))
		batch := readings[:n]
		if err := retry(func() error { _, err := sink.Write(ctx, sensorhub.Batch{Readings: batch}); return err }); err != nil {
			return err
		}
		readings = readings[n:]
		if rng.IntN(4) == 0 {
			if err := retry(func() error { _, err := sink.Flush(ctx, 0); return err }); err != nil {
				return err
			}
		}
	}
	return retry(func() error { _, err := sink.Flush(ctx, 0); return err })
}

// TestOrderIndependence stores the same readings sorted, and shuffled with
// duplicates in random batches, and compares the derived readings: they
// must be the same, whatever the order, and the dew points must be those
// an independent pairing of the final readings gives.
func TestOrderIndependence(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	readings := propertyReadings(rng)
	sorted := slices.Clone(readings)
	slices.SortFunc(sorted, func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) })
	want := runProperty(t, rng, sorted)
	if len(want) == 0 {
		t.Fatal("no derived readings")
	}
	checkDewPoints(t, readings, want)
	for run := range 3 {
		shuffled := slices.Clone(readings)
		for range len(shuffled) / 10 { // duplicates
			shuffled = append(shuffled, shuffled[rng.IntN(len(shuffled))])
		}
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := runProperty(t, rng, shuffled)
		if d := diff(want, got); d != "" {
			t.Errorf("run %d: derived readings differ from the in-order run:\n%s", run, d)
		}
	}
}

// checkDewPoints counts the temperatures with a humidity within 60 s that
// the spike rule leaves unflagged: each must have a dew point, and no
// other.
func checkDewPoints(t *testing.T, readings []sensorhub.Reading, rows []row) {
	t.Helper()
	hum := map[string][]sensorhub.Reading{}
	for _, r := range readings {
		if r.Sensor == "humidity" {
			hum[r.Station] = append(hum[r.Station], r)
		}
	}
	spiked := func(r sensorhub.Reading) bool {
		return slices.ContainsFunc(hum[r.Station], func(n sensorhub.Reading) bool {
			d := n.Time.Sub(r.Time)
			return d > 0 && d <= 30*time.Second && (n.Value-r.Value > 30 || r.Value-n.Value > 30)
		})
	}
	want := map[string]bool{}
	for _, r := range readings {
		if r.Sensor != "temperature" {
			continue
		}
		if slices.ContainsFunc(hum[r.Station], func(h sensorhub.Reading) bool {
			d := h.Time.Sub(r.Time)
			return d >= -time.Minute && d <= time.Minute && !spiked(h)
		}) {
			want[r.Station+r.Time.UTC().Format(time.RFC3339Nano)] = true
		}
	}
	got := map[string]bool{}
	for _, r := range rows {
		if r.Sensor == "dew_point" {
			got[r.Station+r.Time.Format(time.RFC3339Nano)] = true
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dew points at %d times, want %d (pairs within 60 s of unflagged humidities)", len(got), len(want))
	}
}

// diff lists the rows only in a or only in b.
func diff(a, b []row) string {
	in := func(rs []row) map[string]bool {
		m := map[string]bool{}
		for _, r := range rs {
			m[r.String()] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out string
	for _, r := range a {
		if !mb[r.String()] {
			out += "  only in order: " + r.String() + "\n"
		}
	}
	for _, r := range b {
		if !ma[r.String()] {
			out += "  only shuffled: " + r.String() + "\n"
		}
	}
	return out
}
