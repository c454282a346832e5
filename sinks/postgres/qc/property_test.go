package qc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

// soilTemperature is a user's custom type with QC limits of its own,
// tighter than temperature's so that short series trip them.
var soilTemperature = sensorhub.SensorType{Name: "soil_temperature", Unit: "Cel", Min: -50, Max: 80,
	QC: sensorhub.QC{
		Climatology: sensorhub.AllYear(-5, 24), Spike: 4, RateOfChange: 1,
		FlatLine: sensorhub.FlatLine{Count: 4, Period: 10 * time.Minute},
		MaxGap:   10 * time.Minute,
	}}

// calmSpeed and calmGust are a user's wind pair: calm_speed stuck at zero
// is a flat line only while calm_gust reads above zero.
var (
	calmSpeed = sensorhub.SensorType{Name: "calm_speed", Unit: "m/s", Min: 0, Max: 100,
		QC: sensorhub.QC{FlatLine: sensorhub.FlatLine{Count: 4, Period: 8 * time.Minute, Companion: "calm_gust"}, MaxGap: 10 * time.Minute}}
	calmGust = sensorhub.SensorType{Name: "calm_gust", Unit: "m/s", Min: 0, Max: 100}
)

func types() []sensorhub.SensorType {
	return append(handlers.Builtin(), soilTemperature, calmSpeed, calmGust)
}

// The world of the property test: a station north and one south of the
// equator, in January; each reports temperature and soil temperature.
var (
	propertyStations = []string{"north", "south"}
	propertySensors  = []string{"temperature", "soil_temperature", "calm_speed", "calm_gust"}
	propertyStart    = time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)
	// The manual flag every world starts with: soil temperature of the
	// north station, fail, for 20 minutes.
	manual = qc.ManualFlag{Station: "north", Sensor: "soil_temperature", Flag: 4, Note: "maintenance",
		From: propertyStart.Add(40 * time.Minute), To: propertyStart.Add(60 * time.Minute)}
)

// randomSeries returns per series readings about a minute apart, with
// gaps, spikes, steps and stuck stretches, around temperatures that the
// northern January finds suspect and the southern one plausible.
func randomSeries(rng *rand.Rand, n int) []sensorhub.Reading {
	var out []sensorhub.Reading
	for _, station := range propertyStations {
		for _, sensor := range propertySensors {
			ts, v := propertyStart, 20.0
			stuck := 0
			for range n {
				ts = ts.Add(time.Duration(30+rng.IntN(60)) * time.Second)
				switch x := rng.IntN(100); {
				case stuck > 0:
					stuck--
				case x < 4:
					ts = ts.Add(time.Duration(10+rng.IntN(20)) * time.Minute) // a gap
				case x < 10:
					stuck = 4 + rng.IntN(20)
				case x < 16:
					v += float64(rng.IntN(41)-20) / 2 // a step
				default:
					v += float64(rng.IntN(9)-4) / 10
				}
				value := v
				if stuck == 0 && rng.IntN(25) == 0 {
					value += 15 * float64(1-2*rng.IntN(2)) // a spike
				}
				if strings.HasPrefix(sensor, "calm_") { // mostly calm, now and then a breeze
					value = 0
					if rng.IntN(6) == 0 {
						value = float64(1 + rng.IntN(8))
					}
				}
				unit := "Cel"
				if strings.HasPrefix(sensor, "calm_") {
					unit = "m/s"
				}
				out = append(out, sensorhub.Reading{Station: station, Sensor: sensor, Time: ts, Value: value, Unit: unit})
			}
		}
	}
	return out
}

// world is a database with the stations, the manual flag and a sink whose
// only processor is quality control.
type world struct {
	db   *postgrestest.DB
	qc   *qc.Processor
	sink *postgres.Sink
}

func newWorld(t *testing.T, processors bool) world {
	t.Helper()
	db := postgrestest.New(t)
	if _, err := db.Pool.Exec(t.Context(), `INSERT INTO stations (id, latitude) VALUES ('north', 48.1), ('south', -33.9)`); err != nil {
		t.Fatal(err)
	}
	p, err := qc.New(qc.Config{Types: types()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Flag(t.Context(), db.Pool, manual); err != nil {
		t.Fatal(err)
	}
	var ps []postgres.Processor
	if processors {
		ps = []postgres.Processor{p}
	}
	return world{db: db, qc: p, sink: newPropertySink(t, db, ps...)}
}

// newPropertySink returns a sink of the property tests on db.
func newPropertySink(t *testing.T, db *postgrestest.DB, processors ...postgres.Processor) *postgres.Sink {
	t.Helper()
	sink, err := postgres.New(postgres.Config{DB: db.Pool, ReorderWindow: 2 * time.Minute, Processors: processors})
	if err != nil {
		t.Fatal(err)
	}
	return sink
}

// instance returns another sink on w's database with a quality control
// processor of its own, as a second replica or a restarted one has.
func (w world) instance(t *testing.T) *postgres.Sink {
	t.Helper()
	p, err := qc.New(qc.Config{Types: types()})
	if err != nil {
		t.Fatal(err)
	}
	return newPropertySink(t, w.db, p)
}

func (w world) write(t *testing.T, rs ...sensorhub.Reading) {
	t.Helper()
	if _, err := w.sink.Write(t.Context(), sensorhub.Batch{Readings: rs}); err != nil {
		t.Fatal(err)
	}
}

func (w world) flush(t *testing.T) {
	t.Helper()
	if _, err := w.sink.Flush(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
}

// flags returns every reading's key and flags, in key order.
func (w world) flags(t *testing.T) []string {
	t.Helper()
	rows, err := w.db.Pool.Query(t.Context(), `SELECT station || ' ' || sensor || ' ' || to_char(ts AT TIME ZONE 'UTC', 'HH24:MI:SS')
  || ' ' || value || ' ' || qc_flag || ' ' || array_to_string(qc_tests, ',')
FROM readings ORDER BY station, sensor, ts`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// announced returns, per reading with a flag other than pass, the flags
// its reading.flagged events leave a consumer with that dedupes by UUID.
func (w world) announced(t *testing.T) map[string]string {
	t.Helper()
	events, err := outbox.List(t.Context(), w.db.Pool, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	out := map[string]string{}
	for _, e := range events {
		if e.Type != qc.EventFlagged || seen[e.UUID] {
			continue
		}
		seen[e.UUID] = true
		var f qc.Flagged
		if err := json.Unmarshal(e.Payload, &f); err != nil {
			t.Fatal(err)
		}
		k := f.Station + " " + f.Sensor + " " + f.Time.Format("15:04:05")
		out[k] = fmt.Sprintf("%d %s", f.Flag, strings.Join(f.Tests, ","))
	}
	return out
}

// diff reports the first lines where got and want differ.
func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d readings, want %d", what, len(got), len(want))
		return
	}
	n := 0
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: %s\n want %s", what, got[i], want[i])
			if n++; n == 10 {
				return
			}
		}
	}
}

// TestPropertyFlagsDoNotDependOnArrivalOrder sends the same readings
// through the sink in random orders, in random batches, with duplicates
// (far outside the reorder window: many arrive late), and checks that the
// stored flags are those of one in-order pass and those of a from-scratch
// evaluation (Rebuild) of the readings stored without the processor; that
// the events leave a consumer with the final flags; and that the test can
// fail: the walk trips every test.
func TestPropertyFlagsDoNotDependOnArrivalOrder(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 7))
			readings := randomSeries(rng, 100)

			want := inOrderFlags(t, readings)
			checkTestsTripped(t, want)

			scratch := newWorld(t, false)
			scratch.write(t, readings...)
			res, err := scratch.qc.Rebuild(t.Context(), scratch.db.Pool, qc.Scope{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "rebuild from scratch", scratch.flags(t), want)
			again, err := scratch.qc.Rebuild(t.Context(), scratch.db.Pool, qc.Scope{}, nil)
			if err != nil || again.Changed != 0 || again.Series != res.Series {
				t.Errorf("second rebuild = %+v, %v; want %d series and no change", again, err, res.Series)
			}

			random := newWorld(t, true)
			shuffled := shuffledWithDuplicates(rng, readings)
			for len(shuffled) > 0 {
				n := min(1+rng.IntN(30), len(shuffled))
				random.write(t, shuffled[:n]...)
				shuffled = shuffled[n:]
				if rng.IntN(10) == 0 {
					random.flush(t)
				}
			}
			random.flush(t)
			got := random.flags(t)
			diff(t, "random order", got, want)

			events := random.announced(t)
			for _, line := range got {
				f := strings.Fields(line)
				k := strings.Join(f[:3], " ")
				flag := f[4]
				tests := ""
				if len(f) > 5 {
					tests = f[5]
				}
				ann, ok := events[k]
				switch flag {
				case "1": // never announced, or announced back to pass
					ok = ok && ann != "1 "
				case "2": // never evaluated: never announced
				default:
					ok = ann != flag+" "+tests
				}
				if ok {
					t.Errorf("%s: events announce %q", line, ann)
				}
			}
		})
	}
}

// TestPropertyFlagsSurviveRestartsAndTwoInstances sends the readings of
// TestPropertyFlagsDoNotDependOnArrivalOrder, shuffled with duplicates,
// through two sinks at once, each with a quality control processor of its
// own, and replaces one of them by a new one (a restart) every few
// batches: the stored flags are those of one in-order pass.
func TestPropertyFlagsSurviveRestartsAndTwoInstances(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 11))
			readings := randomSeries(rng, 100)

			want := inOrderFlags(t, readings)

			w := newWorld(t, true)
			shuffled := shuffledWithDuplicates(rng, readings)
			var batches [][]sensorhub.Reading
			for len(shuffled) > 0 {
				n := min(1+rng.IntN(30), len(shuffled))
				batches, shuffled = append(batches, shuffled[:n]), shuffled[n:]
			}
			sinks := [2]*postgres.Sink{w.sink, w.instance(t)}
			for from := 0; from < len(batches); from += 2 {
				if rng.IntN(4) == 0 {
					sinks[rng.IntN(2)] = w.instance(t)
				}
				var (
					wg   sync.WaitGroup
					errs [2]error
				)
				for i, b := range batches[from:min(from+2, len(batches))] {
					wg.Go(func() { _, errs[i] = sinks[i].Write(t.Context(), sensorhub.Batch{Readings: b}) })
				}
				wg.Wait()
				if err := errors.Join(errs[:]...); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.instance(t).Flush(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
			diff(t, "two instances, restarted", w.flags(t), want)
		})
	}
}

// inOrderFlags returns the flags that one in-order pass of readings, one
// at a time, stores.
func inOrderFlags(t *testing.T, readings []sensorhub.Reading) []string {
	t.Helper()
	w := newWorld(t, true)
	for _, r := range slices.SortedStableFunc(slices.Values(readings), func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) }) {
		w.write(t, r)
	}
	w.flush(t)
	return w.flags(t)
}

// shuffledWithDuplicates returns readings and a quarter as many repeated
// from among them, in random order.
func shuffledWithDuplicates(rng *rand.Rand, readings []sensorhub.Reading) []sensorhub.Reading {
	shuffled := slices.Clone(readings)
	for range len(readings) / 4 {
		shuffled = append(shuffled, readings[rng.IntN(len(readings))])
	}
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	return shuffled
}

// checkTestsTripped fails unless the flags include every test.
func checkTestsTripped(t *testing.T, lines []string) {
	t.Helper()
	counts := map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 5 {
			for _, test := range strings.Split(f[5], ",") {
				counts[f[0]+" "+test]++
			}
		}
	}
	for _, l := range lines {
		if f := strings.Fields(l); f[1] == "calm_speed" && len(f) > 5 {
			counts["calm "+f[5]]++
		}
	}
	for _, want := range []string{"north climatology", "north spike", "north rate_of_change", "north flat_line", "north manual", "south spike", "calm flat_line"} {
		if counts[want] == 0 {
			t.Errorf("no reading flagged %s (%v): the walk must trip every test", want, counts)
		}
	}
	t.Logf("%d readings; flags by station and test: %v", len(lines), counts)
}
