package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
)

// processed returns whether processor has processed the series
// station/sensor up to device time upto, for poll.Until.
func (e *testEnv) processed(t *testing.T, processor, station, sensor string, upto time.Time) func() bool {
	return func() bool {
		var done bool
		err := e.db.Pool.QueryRow(t.Context(), `SELECT coalesce(bool_and(processed_until >= $4), false)
FROM processor_cursors WHERE processor = $1 AND station = $2 AND sensor = $3`, processor, station, sensor, upto).Scan(&done)
		return err == nil && done
	}
}

// TestDerivedQuantitiesEndToEnd runs the binary with its defaults:
// temperature and humidity sent as two messages 20 s apart give one dew
// point, a temperature 5 minutes later pairs with nothing, and a running
// rain total that the station resets gives rain amounts, no negative rain.
func TestDerivedQuantitiesEndToEnd(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_REORDER_WINDOW"] = "1s"
	e.start(t, "run")
	e.waitHealthy(t)

	send := func(sensor string, at time.Time, value float64) {
		e.xadd(t, fmt.Sprintf(`{"sensor":%q,"station":"roof","value":%v,"timestamp":%q}`, sensor, value, at.Format(time.RFC3339)))
	}
	base := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	send("temperature", base, 20)
	send("humidity", base.Add(20*time.Second), 50)
	poll.Until(t, 30*time.Second, "a dew point", func() bool {
		return e.rows(t, "WHERE sensor = 'dew_point' AND derived AND ts = $1", base) == 1
	})

	send("temperature", base.Add(5*time.Minute), 21)
	for i, v := range []float64{10, 10.2, 0.1, 0.3} { // reset after the second
		send("rain_total", base.Add(time.Duration(i)*time.Minute), v)
	}
	poll.Until(t, 30*time.Second, "the late temperature processed", e.processed(t, derived.Name, "roof", "temperature", base.Add(5*time.Minute)))
	poll.Until(t, 30*time.Second, "the rain totals processed", e.processed(t, derived.Name, "roof", "rain_total", base.Add(3*time.Minute)))
	if n := e.rows(t, "WHERE sensor = 'dew_point'"); n != 1 {
		t.Errorf("%d dew points, want 1: a temperature 5 minutes from any humidity pairs with none", n)
	}
	rows, err := e.db.Pool.Query(context.Background(), `SELECT value FROM readings WHERE station = 'roof' AND sensor = 'rain' AND derived ORDER BY ts`)
	if err != nil {
		t.Fatal(err)
	}
	var rain []float64
	for rows.Next() {
		var v float64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		rain = append(rain, v)
	}
	if want := []float64{0.2, 0.1, 0.2}; len(rain) != len(want) || fmt.Sprintf("%.3f", rain) != fmt.Sprintf("%.3f", want) {
		t.Errorf("rain amounts %v, want %v", rain, want)
	}
	poll.Until(t, 30*time.Second, "a readings.derived event", func() bool {
		for _, ev := range e.events(t, e.vars["SENSORHUB_EVENTS_STREAM"]) {
			if ev.Type == derived.EventDerived {
				return true
			}
		}
		return false
	})
}

// TestStationElevationRecomputesSeaLevelPressure stores a pressure and a
// temperature of a station without elevation, then sets one: the
// sea-level pressure appears.
func TestStationElevationRecomputesSeaLevelPressure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_REORDER_WINDOW"] = "1s"
	e.start(t, "run")
	e.waitHealthy(t)
	base := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	e.xadd(t, fmt.Sprintf(`[{"sensor":"pressure","station":"hill","value":898.76,"timestamp":%q},
		{"sensor":"temperature","station":"hill","value":8.5,"timestamp":%q}]`, base.Format(time.RFC3339), base.Add(30*time.Second).Format(time.RFC3339)))
	poll.Until(t, 30*time.Second, "the pressure processed", e.processed(t, derived.Name, "hill", "pressure", base))
	if n := e.rows(t, "WHERE sensor = 'sea_level_pressure'"); n != 0 {
		t.Fatalf("%d sea-level pressures without an elevation", n)
	}
	if code, out := e.cli(t, "station", "set", "hill", "--elevation", "1000"); code != 0 {
		t.Fatalf("station set: exit %d\n%s", code, out)
	}
	var slp float64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT value FROM readings WHERE station = 'hill' AND sensor = 'sea_level_pressure' AND derived`).Scan(&slp); err != nil {
		t.Fatal(err)
	}
	if slp < 1013 || slp > 1013.5 {
		t.Errorf("sea-level pressure %v, want 1013.25 ± 0.3 (the standard atmosphere at 1000 m)", slp)
	}
}
