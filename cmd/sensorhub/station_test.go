package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
)

// storedAt returns the device time of station's temperature readings, RFC
// 3339 in UTC, in order.
func (e *testEnv) storedAt(t *testing.T, station string) []string {
	t.Helper()
	rows, err := e.db.Pool.Query(t.Context(),
		`SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM readings WHERE station = $1 ORDER BY ts`, station)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ts string
		if err := rows.Scan(&ts); err != nil {
			t.Fatal(err)
		}
		out = append(out, ts)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *testEnv) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out := e.cli(t, args...)
	if code != exitOK {
		t.Fatalf("sensorhub %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// TestServiceReadsZonelessTimesInStationZones checks DESIGN.md §10 through
// Redis and the service: the legacy message from a station in
// America/New_York is stored at 17:00Z; a zone changed while the service
// runs applies within seconds without moving stored readings; and a wall
// clock the new zone repeats (Berlin's fall change) is poisoned
// ambiguous_local_time.
func TestServiceReadsZonelessTimesInStationZones(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_STATION_REFRESH"] = "200ms"
	e.mustCLI(t, "station", "set", "ny", "--timezone", "America/New_York")
	e.start(t, "run")
	e.waitHealthy(t)

	e.xadd(t, `{"sensor":"temperature","value":14,"timestamp":"2024-12-01 12:00:00","station":"ny"}`)
	e.xadd(t, `{"sensor":"temperature","value":14,"timestamp":"2024-12-01 12:00:00","station":"plain"}`)
	poll.Until(t, 10*time.Second, "both readings are stored", func() bool { return e.rows(t, "") == 2 })
	if got := e.storedAt(t, "ny"); fmt.Sprint(got) != "[2024-12-01T17:00:00Z]" {
		t.Fatalf("ny stored at %v, want 2024-12-01T17:00:00Z", got)
	}
	if got := e.storedAt(t, "plain"); fmt.Sprint(got) != "[2024-12-01T12:00:00Z]" {
		t.Fatalf("plain stored at %v, want 2024-12-01T12:00:00Z (SENSORHUB_TIMEZONE)", got)
	}

	// Flags may follow the id.
	e.mustCLI(t, "station", "set", "ny", "--timezone", "Europe/Berlin")
	changed := time.Now()
	// Until the service follows, a reading at 12:00:ss is stored at
	// 17:00:ss; after, at 11:00:ss.
	var followedAfter time.Duration
	poll.Until(t, 20*time.Second, "the running service reads ny's times in Berlin", func() bool {
		for _, ts := range e.storedAt(t, "ny") {
			if strings.HasPrefix(ts, "2024-12-01T11:00:") {
				followedAfter = time.Since(changed)
				return true
			}
		}
		e.xadd(t, fmt.Sprintf(`{"sensor":"temperature","value":14,"timestamp":"2024-12-01 12:00:%02d","station":"ny"}`, 1+int(time.Since(changed)/(100*time.Millisecond))%59))
		return false
	})
	t.Logf("the service followed the zone change after %s", followedAfter.Round(time.Millisecond))
	if got := e.storedAt(t, "ny"); !slices.Contains(got, "2024-12-01T17:00:00Z") {
		t.Fatalf("ny stored at %v, want the reading of before the change still at 17:00:00Z", got)
	}

	id := e.xadd(t, `{"sensor":"temperature","value":14,"timestamp":"2024-10-27 02:30:00","station":"ny"}`)
	poll.Until(t, 10*time.Second, "the ambiguous reading is poisoned", func() bool {
		for _, m := range e.poisoned(t) {
			if m.Values["entry_id"] == id {
				if m.Values["reason"] != "ambiguous_local_time" {
					t.Fatalf("poisoned with %v, want ambiguous_local_time", m.Values)
				}
				return true
			}
		}
		return false
	})
}

// TestServiceStoresCalibratedValues checks DESIGN.md §11 through the
// service: a reading is stored calibrated with raw_value kept, and ending
// the calibration in the past restores it and forwards calibration.applied.
func TestServiceStoresCalibratedValues(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	out := e.mustCLI(t, "calibration", "add", "roof", "temperature", "--scale", "1.5", "--offset", "-2", "--note", "screen")
	if !strings.Contains(out, "added calibration #1: roof/temperature in [the beginning, open): value × 1.5 − 2") {
		t.Fatalf("calibration add printed:\n%s", out)
	}
	e.start(t, "run")
	e.waitHealthy(t)
	e.xadd(t, `{"sensor":"temperature","value":14,"timestamp":"2024-12-01 12:00:00","station":"roof"}`)
	poll.Until(t, 10*time.Second, "the reading is stored", func() bool { return e.rows(t, "") == 1 })
	var value, raw float64
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT value, raw_value FROM readings`).Scan(&value, &raw); err != nil {
		t.Fatal(err)
	}
	if value != 19 || raw != 14 {
		t.Fatalf("stored value %v, raw_value %v; want 19 (14 × 1.5 - 2) and 14", value, raw)
	}

	out = e.mustCLI(t, "calibration", "end", "1", "--to", "2024-06-01T00:00:00Z")
	if !strings.Contains(out, "1 stored reading(s) calibrated again") {
		t.Fatalf("calibration end printed:\n%s", out)
	}
	if n := e.rows(t, "WHERE value = 14 AND raw_value IS NULL"); n != 1 {
		t.Fatal("the reading after the calibration's new end is not back to 14 with raw_value null")
	}
	poll.Until(t, 20*time.Second, "calibration.applied is forwarded", func() bool {
		for _, ev := range e.events(t, e.vars["SENSORHUB_EVENTS_STREAM"]) {
			if ev.Type == calibration.EventApplied {
				var a calibration.Applied
				if err := ev.Decode(&a); err != nil || a.Station != "roof" || a.Readings != 1 || a.To != nil ||
					!a.From.Equal(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("calibration.applied %+v (%v), want roof, 1 reading, from 2024-06-01, open", a, err)
				}
				return true
			}
		}
		return false
	})
	out = e.mustCLI(t, "calibration", "list", "roof")
	if !strings.Contains(out, "2024-06-01T00:00:00Z") || !strings.Contains(out, "screen") {
		t.Fatalf("calibration list printed:\n%s", out)
	}
	var list []calibration.Calibration
	if err := json.Unmarshal([]byte(e.mustCLI(t, "calibration", "list", "roof", "temperature", "--json")), &list); err != nil ||
		len(list) != 1 || list[0].Scale != 1.5 || list[0].Offset != -2 || !list[0].From.IsZero() || list[0].Note != "screen" {
		t.Fatalf("calibration list --json = %+v, %v; want the one calibration", list, err)
	}
}

// TestStationAndCalibrationCommandsRefuseBadInput checks that bad values
// are refused with exit 2, every one named at once, and nothing written;
// and that an overlapping calibration is refused naming the one it
// overlaps.
func TestStationAndCalibrationCommandsRefuseBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.mustCLI(t, "station", "set", "roof", "--name", "Roof", "--lat", "52.5", "--lon", "13.4", "--elevation", "34", "--timezone", "Europe/Berlin")
	e.mustCLI(t, "calibration", "add", "roof", "temperature", "--offset", "0.5", "--from", "2024-01-01T00:00:00Z")
	before := e.tableCounts(t)

	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"station", "set", "roof", "--timezone", "Mars/Olympus", "--lat", "91", "--lon", "-181"},
			[]string{`"Mars/Olympus" is not an IANA time zone`, "latitude 91", "longitude -181"}},
		{[]string{"station", "set", "--lat", "north", "roof", "--elevation", "high"}, []string{`--lat "north"`, `--elevation "high"`}},
		{[]string{"station", "set"}, []string{"exactly one station id"}},
		{[]string{"station", "set", "roof", "--interval", "temperature", "--interval", "Wind=5m", "--lat", "95"},
			[]string{`interval "temperature"`, `sensor "Wind"`, "latitude 95"}},
		{[]string{"calibration", "add", "roof", "humidity", "--scale", "0", "--offset", "NaN"}, []string{"scale 0", "offset NaN"}},
		{[]string{"calibration", "add", "roof", "humidity", "--from", "2024-12-01T00:00:00Z", "--to", "2024-12-01T00:00:00Z"}, []string{"is empty"}},
		{[]string{"calibration", "add", "roof", "humidity", "--from", "yesterday", "--scale", "NaN"}, []string{`--from "yesterday"`, "scale NaN"}},
		{[]string{"calibration", "end", "x"}, []string{`"x" is not a calibration id`, "--to is required"}},
	} {
		code, out := e.cli(t, c.args...)
		if code != exitUsage {
			t.Errorf("sensorhub %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, exitUsage, out)
		}
		for _, w := range c.wants {
			if !strings.Contains(out, w) {
				t.Errorf("sensorhub %s: output does not name %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}

	code, out := e.cli(t, "calibration", "add", "roof", "temperature", "--from", "2023-06-01T00:00:00Z", "--to", "2024-06-01T00:00:00Z")
	if code != exitFailure || !strings.Contains(out, "overlaps") || !strings.Contains(out, "#1 [2024-01-01T00:00:00Z, open)") {
		t.Fatalf("overlapping calibration add: exit %d, want 1 naming #1:\n%s", code, out)
	}
	if after := e.tableCounts(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("row counts changed from %v to %v by refused commands", before, after)
	}

	var list []map[string]any
	if err := json.Unmarshal([]byte(e.mustCLI(t, "station", "list", "--json")), &list); err != nil || len(list) != 1 ||
		list[0]["id"] != "roof" || list[0]["timezone"] != "Europe/Berlin" || list[0]["latitude"] != 52.5 || list[0]["elevation_m"] != 34.0 {
		t.Fatalf("station list --json = %v, %v; want roof as set", list, err)
	}
	if out := e.mustCLI(t, "station", "list"); !strings.Contains(out, "Roof") || !strings.Contains(out, "Europe/Berlin") {
		t.Fatalf("station list printed:\n%s", out)
	}
}

// TestStationSetInterval: station set --interval sets the expected interval
// of a sensor of the station (DESIGN.md §16), and SENSOR= clears it.
func TestStationSetInterval(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	interval := func() (seconds *float64) {
		t.Helper()
		err := e.db.Pool.QueryRow(t.Context(), `SELECT interval_s FROM sensor_status WHERE station = 'roof' AND sensor = 'temperature'`).Scan(&seconds)
		if err != nil {
			t.Fatal(err)
		}
		return seconds
	}
	e.mustCLI(t, "station", "set", "roof", "--interval", "temperature=10m", "--interval", "humidity=90s")
	if got := interval(); got == nil || *got != 600 {
		t.Fatalf("interval_s after --interval temperature=10m = %v, want 600", got)
	}
	e.mustCLI(t, "station", "set", "--interval", "temperature=", "roof")
	if got := interval(); got != nil {
		t.Fatalf("interval_s after --interval temperature= = %v, want none", *got)
	}
}
