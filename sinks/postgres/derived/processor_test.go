package derived_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/weather"
	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
)

func TestPairsNearestPartnerWithinTolerance(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{})
	// Two messages 20 s apart pair; a temperature 5 minutes later has no
	// humidity within 60 s; the humidity nearest to the first wins.
	f.write(reading("temperature", 0, 20))
	f.write(reading("humidity", 20, 50))
	f.write(reading("humidity", -50, 90))
	f.write(reading("temperature", 300, 25))
	f.flush()
	want, _ := weather.DewPoint(20, 50)
	got := f.values("dew_point")
	if len(got) != 1 || !near(got[0], want) {
		t.Errorf("dew points %v, want only {0: %v}", got, want)
	}
	if ah := f.values("absolute_humidity"); len(ah) != 1 {
		t.Errorf("absolute humidity at %v, want at 0 only", sortedKeys(ah))
	}
	// Wind chill needs wind.
	if wc := f.values("wind_chill"); len(wc) != 0 {
		t.Errorf("wind chill %v without wind", wc)
	}
}

func TestComputedWhicheverInputArrivesLastAndFollowsLateInputs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{})
	f.write(reading("humidity", 10, 60))
	f.flush()
	f.write(reading("temperature", 0, -5))
	f.flush()
	f.write(reading("wind_speed", 30, 8))
	f.flush()
	td, _ := weather.DewPoint(-5, 60)
	wc, _ := weather.WindChill(-5, 8)
	at, _ := weather.ApparentTemperature(-5, 60, 8)
	for sensor, want := range map[string]float64{"dew_point": td, "wind_chill": wc, "apparent_temperature": at} {
		if got := f.values(sensor); len(got) != 1 || !near(got[0], want) {
			t.Errorf("%s %v, want {0: %v}", sensor, got, want)
		}
	}
	// A nearer humidity, late, takes over.
	f.write(reading("humidity", -2, 80))
	f.flush()
	td, _ = weather.DewPoint(-5, 80)
	if got := f.values("dew_point"); !near(got[0], td) {
		t.Errorf("dew point after a nearer humidity %v, want %v", got[0], td)
	}
}

func TestSeaLevelPressureNeedsElevation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{})
	f.write(reading("pressure", 0, 898.76), reading("temperature", 5, 8.5))
	f.flush()
	if got := f.values("sea_level_pressure"); len(got) != 0 {
		t.Fatalf("sea-level pressure %v without elevation", got)
	}
	if _, err := f.db.Pool.Exec(t.Context(), `UPDATE stations SET elevation_m = 1000 WHERE id = 's1'`); err != nil {
		t.Fatal(err)
	}
	tx, err := f.db.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	if _, err := f.proc.Rebuild(t.Context(), tx, "s1", time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.values("sea_level_pressure"); len(got) != 1 || !near(got[0], 1013.2621456888431) {
		t.Errorf("sea-level pressure %v, want {0: 1013.26}", got)
	}
}

func TestDeviceReadingReplacesComputedNeverTheOtherWay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{})
	f.write(reading("temperature", 0, 20), reading("humidity", 0, 50))
	f.flush()
	if got := f.rows("dew_point"); len(got) != 1 || !got[0].Derived {
		t.Fatalf("dew point rows %v, want one computed", got)
	}
	res := f.write(reading("dew_point", 0, 9))
	if res.Stored != 1 || res.Replaced != 1 || res.Conflicts != 0 {
		t.Errorf("device dew point: %+v, want stored and replaced once", res)
	}
	// Sent again: a duplicate now.
	if res := f.write(reading("dew_point", 0, 9)); res.Duplicates != 1 {
		t.Errorf("device dew point again: %+v, want a duplicate", res)
	}
	// An input changes: the device's value stays.
	f.write(reading("humidity", 1, 70))
	f.flush()
	if got := f.rows("dew_point"); len(got) != 1 || got[0].Derived || got[0].Value != 9 {
		t.Errorf("dew point rows %v, want the device's 9", got)
	}
}

func TestRainFromRunningTotal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{})
	totals := []struct{ s, v float64 }{
		{0, 50},     // first: a baseline, no rain
		{60, 50.2},  // 0.2
		{120, 50.2}, // 0
		{180, 0},    // glitch: the next returns
		{240, 50.6}, // 0.4 since 50.2
		{300, 0.3},  // reset: 0.3 since the reset
		{360, 0.5},  // 0.2
		{7560, 2.5}, // after two hours of silence: a new baseline, no phantom 2 mm
		{7620, 2.6}, // 0.1
	}
	for _, i := range []int{8, 3, 0, 5, 1, 7, 2, 6, 4} { // any order
		f.write(reading("rain_total", totals[i].s, totals[i].v))
		if i%2 == 0 {
			f.flush()
		}
	}
	f.flush()
	want := map[float64]float64{60: 0.2, 120: 0, 240: 0.4, 300: 0.3, 360: 0.2, 7620: 0.1}
	got := f.values("rain")
	if len(got) != len(want) {
		t.Errorf("rain at %v, want at %v", sortedKeys(got), sortedKeys(want))
	}
	for s, v := range want {
		if !near(got[s], v) {
			t.Errorf("rain at %v s = %v, want %v", s, got[s], v)
		}
	}
	// Rain rate over 15 minutes, per hour: at 360 s, 0.2+0+0.4+0.3+0.2.
	if r := f.values("rain_rate"); !near(r[360], 1.1*4) || !near(r[7620], 0.1*4) {
		t.Errorf("rain rate %v", r)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := derived.New(derived.Config{Tolerance: -time.Second, Quantities: []derived.Quantity{{Name: "rain"}}})
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"Tolerance", "Compute is nil", "unit is required", `"rain"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestFollowsCalibration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, derived.Config{})
	f.write(reading("temperature", 0, 20), reading("humidity", 10, 50), reading("temperature", 600, 20), reading("humidity", 600, 50))
	f.flush()
	store, err := calibration.New(calibration.Config{DB: f.db.Pool, Followers: []calibration.Follower{f.proc}})
	if err != nil {
		t.Fatal(err)
	}
	// Humidity reads 10 %RH low before 300 s.
	if _, _, err := store.Add(t.Context(), calibration.Calibration{Station: "s1", Sensor: "humidity", Scale: 1, Offset: 10, To: at(300)}); err != nil {
		t.Fatal(err)
	}
	corrected, _ := weather.DewPoint(20, 60)
	unchanged, _ := weather.DewPoint(20, 50)
	if got := f.values("dew_point"); !near(got[0], corrected) || !near(got[600], unchanged) {
		t.Errorf("dew points after calibration %v, want {0: %v, 600: %v}", got, corrected, unchanged)
	}
}
