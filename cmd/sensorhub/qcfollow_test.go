package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/internal/poll"
	"github.com/sensorhub/sensorhub/sensorhub/weather"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
)

// TestQCFlagAndRebuildMakeDerivedValuesFollow stores a temperature and two
// humidities 20 s and 50 s after it through the service: the dew point
// pairs with the nearer one. `sensorhub qc flag` of the nearer humidity as
// fail computes the dew point again from the farther one, a second flag
// of that one removes it, and `sensorhub qc rebuild` after the manual
// flags are deleted brings it back; each change in the command's
// transaction, announced with readings.derived.
func TestQCFlagAndRebuildMakeDerivedValuesFollow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_REORDER_WINDOW"] = "1s"
	e.start(t, "run")
	e.waitHealthy(t)
	base := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	e.xadd(t, fmt.Sprintf(`[{"sensor":"temperature","station":"roof","value":20,"timestamp":%q},
		{"sensor":"humidity","station":"roof","value":50,"timestamp":%q},
		{"sensor":"humidity","station":"roof","value":80,"timestamp":%q}]`,
		base.Format(time.RFC3339), base.Add(20*time.Second).Format(time.RFC3339), base.Add(50*time.Second).Format(time.RFC3339)))
	poll.Until(t, 30*time.Second, "both humidities processed", e.processed(t, derived.Name, "roof", "humidity", base.Add(50*time.Second)))
	nearer, _ := weather.DewPoint(20, 50)
	farther, _ := weather.DewPoint(20, 80)

	// dewPoint is the stored dew point at base, NaN when there is none.
	dewPoint := func() float64 {
		var v float64
		err := e.db.Pool.QueryRow(t.Context(), `SELECT value FROM readings WHERE station = 'roof' AND sensor = 'dew_point' AND derived AND ts = $1`, base).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return math.NaN()
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	wantDewPoint := func(step string, want float64) {
		t.Helper()
		if got := dewPoint(); math.IsNaN(want) != math.IsNaN(got) || math.Abs(got-want) > 1e-9 {
			t.Fatalf("%s: dew point %v, want %v", step, got, want)
		}
	}
	wantDewPoint("stored", nearer)

	flag := func(from, to time.Duration) {
		t.Helper()
		e.mustCLI(t, "qc", "flag", "roof", "humidity", "--from", base.Add(from).Format(time.RFC3339), "--to", base.Add(to).Format(time.RFC3339), "--flag", "4")
	}
	flag(10*time.Second, 30*time.Second)
	wantDewPoint("after qc flag of the nearer humidity", farther)
	flag(40*time.Second, time.Minute)
	wantDewPoint("after qc flag of the farther humidity", math.NaN())

	if _, err := e.db.Pool.Exec(t.Context(), `DELETE FROM qc_manual_flags WHERE station = 'roof'`); err != nil {
		t.Fatal(err)
	}
	e.mustCLI(t, "qc", "rebuild", "--station", "roof")
	wantDewPoint("after qc rebuild without the manual flags", nearer)

	var announced []string
	uuids := map[string]bool{}
	poll.Until(t, 30*time.Second, "four readings.derived events about the dew point", func() bool {
		announced = nil
		clear(uuids)
		for _, ev := range e.events(t, e.vars["SENSORHUB_EVENTS_STREAM"]) {
			if ev.Type != derived.EventDerived {
				continue
			}
			uuids[ev.UUID] = true
			var d derived.Derived
			if err := json.Unmarshal(ev.Payload, &d); err != nil {
				t.Fatal(err)
			}
			for _, r := range d.Readings {
				if r.Sensor == "dew_point" {
					announced = append(announced, fmt.Sprintf("%.2f", r.Value))
				}
			}
			for _, r := range d.Removed {
				if r.Sensor == "dew_point" {
					announced = append(announced, "removed")
				}
			}
		}
		return len(announced) >= 4
	})
	want := []string{fmt.Sprintf("%.2f", nearer), fmt.Sprintf("%.2f", farther), "removed", fmt.Sprintf("%.2f", nearer)}
	if fmt.Sprint(announced) != fmt.Sprint(want) {
		t.Errorf("readings.derived events announce the dew points %q, want %q", announced, want)
	}
	// The dew point came back with the value it had: a consumer deduping
	// by UUID must still see that change.
	if len(uuids) != len(want) {
		t.Errorf("%d distinct UUIDs among the %d readings.derived events, want one each", len(uuids), len(want))
	}
}
