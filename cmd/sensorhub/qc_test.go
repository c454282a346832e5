package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

// qcFlags returns the flags of station's temperature readings, "HH:MM
// flag tests", in device-time order.
func (e *testEnv) qcFlags(t *testing.T, station string) []string {
	t.Helper()
	rows, err := e.db.Pool.Query(t.Context(), `SELECT to_char(ts AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || qc_flag || ' ' || array_to_string(qc_tests, ',')
FROM readings WHERE station = $1 AND sensor = 'temperature' ORDER BY ts`, station)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(s))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// binaryCLI runs the real binary with args in e's environment and returns
// its exit code and output.
func (e *testEnv) binaryCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = e.environ()
	out, err := cmd.CombinedOutput()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestServiceQCFlagMarksStoredAndFutureReadings runs the service, which
// evaluates readings as they come (pass), then `sensorhub qc flag` from
// the binary: the stored readings of the period turn fail at once with a
// reading.flagged event each, a reading sent later into the period is
// stored fail, readings outside keep pass, and bad arguments are named
// and exit 2.
func TestServiceQCFlagMarksStoredAndFutureReadings(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_REORDER_WINDOW"] = "500ms"
	e.start(t, "run")
	e.waitHealthy(t)
	send := func(hhmm string, v float64) {
		e.xadd(t, fmt.Sprintf(`{"sensor": "temperature", "value": %v, "timestamp": "2024-12-01 %s:00", "station": "qc-e2e"}`, v, hhmm))
	}
	send("12:00", 10)
	send("12:01", 10.5)
	send("12:02", 11)
	want := []string{"12:00 1", "12:01 1", "12:02 1"}
	poll.Until(t, 30*time.Second, "three readings evaluated as pass", func() bool { return slices.Equal(e.qcFlags(t, "qc-e2e"), want) })

	code, out := e.binaryCLI(t, "qc", "flag", "qc-e2e", "temperature", "--from", "2024-12-01T12:00:30Z", "--to", "2024-12-01T12:10:00Z",
		"--flag", "4", "--note", "mast repaired")
	if code != exitOK || !strings.Contains(out, "2 stored reading(s) changed flags") {
		t.Fatalf("qc flag: exit %d\n%s", code, out)
	}
	if got, want := e.qcFlags(t, "qc-e2e"), []string{"12:00 1", "12:01 4 manual", "12:02 4 manual"}; !slices.Equal(got, want) {
		t.Errorf("after qc flag: %q, want %q", got, want)
	}

	send("12:03", 11.2)
	want = []string{"12:00 1", "12:01 4 manual", "12:02 4 manual", "12:03 4 manual"}
	poll.Until(t, 30*time.Second, "the later reading flagged by hand", func() bool { return slices.Equal(e.qcFlags(t, "qc-e2e"), want) })

	var announced []string
	poll.Until(t, 30*time.Second, "three reading.flagged events", func() bool {
		announced = nil
		for _, ev := range e.events(t, e.vars["SENSORHUB_EVENTS_STREAM"]) {
			if ev.Type != qc.EventFlagged {
				continue
			}
			var f qc.Flagged
			if err := json.Unmarshal(ev.Payload, &f); err != nil {
				t.Fatal(err)
			}
			announced = append(announced, fmt.Sprintf("%s %d→%d %s", f.Time.Format("15:04"), f.PreviousFlag, f.Flag, strings.Join(f.Tests, ",")))
		}
		return len(announced) >= 3
	})
	if want := []string{"12:01 1→4 manual", "12:02 1→4 manual", "12:03 2→4 manual"}; !slices.Equal(announced, want) {
		t.Errorf("reading.flagged events %q, want %q", announced, want)
	}

	code, out = e.binaryCLI(t, "qc", "flag", "qc-e2e", "temperature", "--from", "yesterday", "--flag", "5")
	for _, named := range []string{`--from "yesterday"`, "--to is required", `--flag "5"`} {
		if code != exitUsage || !strings.Contains(out, named) {
			t.Errorf("qc flag with bad arguments: exit %d, want %d naming %s:\n%s", code, exitUsage, named, out)
		}
	}
	code, out = e.binaryCLI(t, "qc", "set", "all", "temprature", "--spike", "-1", "--max-gap", "soon", "--climatology", "9")
	for _, named := range []string{`--max-gap "soon"`, `--climatology "9"`, `"temprature" is not registered`, "spike -1"} {
		if code != exitUsage || !strings.Contains(out, named) {
			t.Errorf("qc set with bad arguments: exit %d, want %d naming %s:\n%s", code, exitUsage, named, out)
		}
	}

	if out := e.mustCLI(t, "qc", "rebuild", "--station", "qc-e2e"); !strings.Contains(out, "re-evaluated 1 series, 0 reading(s) changed") {
		t.Errorf("qc rebuild after the service evaluated everything: %s", out)
	}
	if out := e.mustCLI(t, "qc", "list"); !strings.Contains(out, "mast repaired") || !strings.Contains(out, "humidity") {
		t.Errorf("qc list shows neither the manual flag nor the declared limits:\n%s", out)
	}
}
