package qc_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/alarms"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

var jan15 = time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)

func temp(station string, minutes int, v float64) sensorhub.Reading {
	return sensorhub.Reading{Station: station, Sensor: "temperature", Unit: "Cel", Time: jan15.Add(time.Duration(minutes) * time.Minute), Value: v}
}

// flagOf returns the stored flag and tests of a reading.
func flagOf(t *testing.T, db *postgrestest.DB, r sensorhub.Reading) (int16, []string) {
	t.Helper()
	var (
		flag  int16
		tests []string
	)
	err := db.Pool.QueryRow(t.Context(), `SELECT qc_flag, qc_tests FROM readings WHERE station = $1 AND sensor = $2 AND ts = $3`,
		r.Station, r.Sensor, r.Time).Scan(&flag, &tests)
	if err != nil {
		t.Fatal(err)
	}
	return flag, tests
}

func wantFlag(t *testing.T, db *postgrestest.DB, r sensorhub.Reading, flag int16, tests ...string) {
	t.Helper()
	gotFlag, gotTests := flagOf(t, db, r)
	if gotFlag != flag || !slices.Equal(gotTests, tests) && len(gotTests)+len(tests) > 0 {
		t.Errorf("%s/%s at %s (%v): flag %d %v, want %d %v", r.Station, r.Sensor, r.Time.Format(time.RFC3339), r.Value, gotFlag, gotTests, flag, tests)
	}
}

func newSink(t *testing.T, db *postgrestest.DB, processors ...postgres.Processor) *postgres.Sink {
	t.Helper()
	sink, err := postgres.New(postgres.Config{DB: db.Pool, ReorderWindow: time.Minute, Processors: processors})
	if err != nil {
		t.Fatal(err)
	}
	return sink
}

func newQC(t *testing.T, ts ...sensorhub.SensorType) *qc.Processor {
	t.Helper()
	p, err := qc.New(qc.Config{Types: ts, Refresh: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func store(t *testing.T, sink *postgres.Sink, rs ...sensorhub.Reading) {
	t.Helper()
	if _, err := sink.Write(t.Context(), sensorhub.Batch{Readings: rs}); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Flush(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
}

// TestClimatologyKnowsTheHemisphere: 35 °C in January is suspect north of
// the equator and at a station of unknown latitude, plausible south of it.
func TestClimatologyKnowsTheHemisphere(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	if _, err := db.Pool.Exec(t.Context(), `INSERT INTO stations (id, latitude) VALUES ('munich', 48.1), ('sydney', -33.9), ('somewhere', NULL)`); err != nil {
		t.Fatal(err)
	}
	sink := newSink(t, db, newQC(t, types()...))
	munich, sydney, somewhere := temp("munich", 0, 35), temp("sydney", 0, 35), temp("somewhere", 0, 35)
	store(t, sink, munich, sydney, somewhere)
	wantFlag(t, db, munich, 3, "climatology")
	wantFlag(t, db, sydney, 1)
	wantFlag(t, db, somewhere, 3, "climatology")
}

// TestCustomTypeLimitsAndStationOverrides: a user's type declares its own
// limits; a type without any stays not evaluated; a station's settings
// override the declaration once rebuilt.
func TestCustomTypeLimitsAndStationOverrides(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	leaf := sensorhub.SensorType{Name: "leaf_wetness", Unit: "%", Min: 0, Max: 100, QC: sensorhub.QC{Climatology: sensorhub.AllYear(0, 15)}}
	plain := sensorhub.SensorType{Name: "leaf_count", Unit: "1"}
	p := newQC(t, leaf, plain)
	sink := newSink(t, db, p)
	r := func(station, sensor string, v float64) sensorhub.Reading {
		return sensorhub.Reading{Station: station, Sensor: sensor, Unit: "%", Time: jan15, Value: v}
	}
	store(t, sink, r("a", "leaf_wetness", 20), r("b", "leaf_wetness", 20), r("a", "leaf_count", 20))
	wantFlag(t, db, r("a", "leaf_wetness", 20), 3, "climatology")
	wantFlag(t, db, r("a", "leaf_count", 20), 2)

	wider := sensorhub.Range{Min: 0, Max: 30}
	if err := qc.Set(t.Context(), db.Pool, qc.Settings{Station: "b", Sensor: "leaf_wetness", Climatology: &wider}); err != nil {
		t.Fatal(err)
	}
	res, err := p.Rebuild(t.Context(), db.Pool, qc.Scope{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed != 1 || res.Series != 2 {
		t.Errorf("Rebuild = %+v, want 2 series (leaf_count runs no test) and 1 change", res)
	}
	wantFlag(t, db, r("a", "leaf_wetness", 20), 3, "climatology")
	wantFlag(t, db, r("b", "leaf_wetness", 20), 1)

	bad := -1.0
	err = qc.Set(t.Context(), db.Pool, qc.Settings{Station: "b c", Sensor: "Leaf", Spike: &bad})
	if !errors.Is(err, qc.ErrInvalid) {
		t.Fatalf("Set of bad values = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"station", "sensor", "spike -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Set error %q does not name %q", err, want)
		}
	}
}

// TestManualFlagAppliesToStoredAndFutureReadings flags a period by hand:
// the stored readings in it turn fail at once, with their events; a
// reading stored later in it is flagged as it is evaluated; readings
// outside keep their flags.
func TestManualFlagAppliesToStoredAndFutureReadings(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	p := newQC(t, types()...)
	sink := newSink(t, db, p)
	before, inside, after := temp("s", 0, 10), temp("s", 10, 10.2), temp("s", 30, 10.1)
	store(t, sink, before, inside, after)
	wantFlag(t, db, inside, 1)

	m, changed, err := p.Flag(t.Context(), db.Pool, qc.ManualFlag{Station: "s", Sensor: "temperature",
		From: jan15.Add(5 * time.Minute), To: jan15.Add(25 * time.Minute), Flag: 4, Note: "mast repaired"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == 0 || changed != 1 {
		t.Errorf("Flag = %+v, %d changed; want an ID and 1 change", m, changed)
	}
	wantFlag(t, db, inside, 4, "manual")
	wantFlag(t, db, before, 1)
	wantFlag(t, db, after, 1)

	later := temp("s", 20, 10.3)
	store(t, sink, later)
	wantFlag(t, db, later, 4, "manual")

	events, err := outbox.List(t.Context(), db.Pool, 100)
	if err != nil {
		t.Fatal(err)
	}
	var flagged []qc.Flagged
	for _, e := range events {
		if e.Type == qc.EventFlagged {
			var f qc.Flagged
			if err := json.Unmarshal(e.Payload, &f); err != nil {
				t.Fatal(err)
			}
			flagged = append(flagged, f)
		}
	}
	if len(flagged) != 2 || flagged[0].PreviousFlag != 1 || flagged[0].Flag != 4 || !flagged[0].Time.Equal(inside.Time) ||
		flagged[1].PreviousFlag != 2 || !flagged[1].Time.Equal(later.Time) {
		t.Errorf("reading.flagged events %+v, want 1 → 4 for the stored reading, then 2 → 4 for the later one", flagged)
	}

	list, err := qc.ListFlags(t.Context(), db.Pool, "")
	if err != nil || len(list) != 1 || list[0].Note != "mast repaired" {
		t.Errorf("ListFlags = %+v, %v", list, err)
	}
	_, _, err = p.Flag(t.Context(), db.Pool, qc.ManualFlag{Station: "s", Sensor: "temperature", From: jan15, To: jan15, Flag: 2})
	if !errors.Is(err, qc.ErrInvalid) || !strings.Contains(err.Error(), "flag 2") || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Flag of bad values = %v, want ErrInvalid naming the flag and the period", err)
	}
}

// TestThresholdRulesSkipFailedReadings: a reading that quality control
// fails (a spike, a manual flag) raises no alarm; the threshold rules run
// after QC in the same transaction.
func TestThresholdRulesSkipFailedReadings(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	rules, err := threshold.Parse("temperature>18")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alarms.SeedRules(t.Context(), db.Pool, rules); err != nil {
		t.Fatal(err)
	}
	p := newQC(t, types()...)
	if _, _, err := p.Flag(t.Context(), db.Pool, qc.ManualFlag{Station: "s", Sensor: "temperature",
		From: jan15.Add(9 * time.Minute), To: jan15.Add(11 * time.Minute), Flag: 4}); err != nil {
		t.Fatal(err)
	}
	sink := newSink(t, db, p, alarms.New(alarms.Config{}))
	spiked, manual := temp("s", 2, 24), temp("s", 10, 19)
	store(t, sink, temp("s", 0, 12), temp("s", 1, 12.5), spiked, temp("s", 3, 13), manual, temp("s", 11, 13), temp("s", 20, 12))
	wantFlag(t, db, spiked, 4, "spike", "rate_of_change")
	wantFlag(t, db, manual, 4, "manual")
	events, err := outbox.List(t.Context(), db.Pool, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == sensorhub.EventThresholdCrossed {
			t.Errorf("threshold.crossed %s from a failed reading", e.Payload)
		}
	}
}

// recorder is a processor after QC that records the readings revised for
// it.
type recorder struct {
	mu      sync.Mutex
	revised []sensorhub.Reading
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Process(_ context.Context, _ pgx.Tx, s *postgres.Series) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revised = append(r.revised, s.Revised...)
	return nil
}

// TestFailFromALaterNeighbourIsRevised: a reading released without a
// successor passes the spike test; its successor arriving later makes it
// a spike, and the processors after QC get it in Series.Revised.
func TestFailFromALaterNeighbourIsRevised(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	rec := &recorder{}
	sink := newSink(t, db, newQC(t, types()...), rec)
	spiked := temp("s", 1, 19)
	store(t, sink, temp("s", 0, 10), spiked)
	wantFlag(t, db, spiked, 3, "rate_of_change")
	store(t, sink, temp("s", 2, 10))
	wantFlag(t, db, spiked, 4, "spike", "rate_of_change")
	if len(rec.revised) != 1 || !rec.revised[0].Time.Equal(spiked.Time) {
		t.Errorf("revised %+v, want the spike", rec.revised)
	}
}

// TestFirstReleaseSeesTheReadingsStoredBefore turns quality control on
// for series with readings stored before it was: the first readings it
// releases continue their run, and the reading that makes the run six
// readings of one value over 50 minutes completes a flat line. The
// readings before come every 10 minutes, four of them, or every minute,
// 45 of them: more than a walk reads at first.
func TestFirstReleaseSeesTheReadingsStoredBefore(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	soil := sensorhub.SensorType{Name: "soil_moisture", Unit: "%", QC: sensorhub.QC{FlatLine: sensorhub.FlatLine{Count: 6, Period: 50 * time.Minute}}}
	for _, c := range []struct {
		station string
		every   time.Duration
		before  int
	}{
		{"ten", 10 * time.Minute, 4},
		{"one", time.Minute, 45},
	} {
		r := func(n int) sensorhub.Reading {
			return sensorhub.Reading{Station: c.station, Sensor: "soil_moisture", Unit: "%", Time: jan15.Add(time.Duration(n) * c.every), Value: 30}
		}
		var before, after []sensorhub.Reading
		for n := range c.before {
			before = append(before, r(n))
		}
		completes := int(50 * time.Minute / c.every)
		for n := c.before; n <= completes; n++ {
			after = append(after, r(n))
		}
		store(t, newSink(t, db), before...)
		store(t, newSink(t, db, newQC(t, soil)), after...)
		wantFlag(t, db, r(0), 2)
		wantFlag(t, db, r(completes-1), 1)
		wantFlag(t, db, r(completes), 4, "flat_line")
	}
}

// TestLateReadingSplitsAFlatLine: a late reading of another value in the
// middle of a flagged flat line splits it, and the readings after it are
// flagged again as the run it starts, up to where that run is long enough.
func TestLateReadingSplitsAFlatLine(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	soil := sensorhub.SensorType{Name: "soil_moisture", Unit: "%", QC: sensorhub.QC{FlatLine: sensorhub.FlatLine{Count: 4, Period: 10 * time.Minute}}}
	sink := newSink(t, db, newQC(t, soil))
	r := func(minutes int, v float64) sensorhub.Reading {
		return sensorhub.Reading{Station: "s", Sensor: "soil_moisture", Unit: "%", Time: jan15.Add(time.Duration(minutes) * time.Minute), Value: v}
	}
	var run []sensorhub.Reading
	for m := 0; m <= 40; m += 2 {
		run = append(run, r(m, 30))
	}
	store(t, sink, run...)
	store(t, sink, r(15, 35))
	for _, x := range run {
		switch m := x.Time.Sub(jan15).Minutes(); {
		case m >= 10 && m < 15, m >= 26: // 10 minutes into the run before, and into the one after
			wantFlag(t, db, x, 4, "flat_line")
		default:
			wantFlag(t, db, x, 1)
		}
	}
}

// TestWindStuckAtZeroWhileItGusts: wind speed at 0 for hours is a calm
// while the gusts are 0 too, and a stuck anemometer once gusts above 0
// arrive, even after the wind speed was evaluated.
func TestWindStuckAtZeroWhileItGusts(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	sink := newSink(t, db, newQC(t, types()...))
	wind := func(sensor string, minutes int, v float64) sensorhub.Reading {
		return sensorhub.Reading{Station: "s", Sensor: sensor, Unit: "m/s", Time: jan15.Add(time.Duration(minutes) * time.Minute), Value: v}
	}
	var speeds []sensorhub.Reading
	for m := 0; m <= 150; m += 10 {
		speeds = append(speeds, wind("wind_speed", m, 0))
	}
	store(t, sink, speeds...)
	for _, r := range speeds {
		wantFlag(t, db, r, 1)
	}
	gust := wind("wind_gust", 65, 4.2)
	store(t, sink, gust)
	wantFlag(t, db, gust, 1) // climatology only: 0 to 90 m/s
	for _, r := range speeds {
		if r.Time.Sub(jan15) >= 120*time.Minute { // 6 readings over 2 h, the gust among them
			wantFlag(t, db, r, 4, "flat_line")
		} else {
			wantFlag(t, db, r, 1)
		}
	}
}
