package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBenchRunsEveryPhase runs a small bench against the real services and
// the real binary; it checks that every phase reports and that the
// correctness checks hold, not the speed targets.
func TestBenchRunsEveryPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres, Redis and a build of cmd/sensorhub")
	}
	t.Parallel()
	binary := filepath.Join(t.TempDir(), "sensorhub")
	if out, err := exec.Command("go", "build", "-o", binary, "../sensorhub").CombinedOutput(); err != nil {
		t.Fatalf("build sensorhub: %v\n%s", err, out)
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{"-n", "3000", "-live-rate", "500", "-live-duration", "1s", "-growth-preload", "20000", "-api-preload", "20000", "-rounds", "2", "-binary", binary, "-check=false"},
		func(string) string { return "" }, &out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	for _, want := range []string{"copy (ceiling)", "minimal loop", "sensorhub drain", "drain, threshold rules", "drain, derived on", "drain, QC + derived on", "drain, rollups on",
		"live, stateless", "live, service defaults", "live p99 stateless", "drain/loop", "rules/drain", "derived/drain", "qc+derived/drain", "rollups on/off", "drain, first 900", "drain, 20000 stored", "growth/drain",
		"rollup reads p99 after the rollups drain", "rollup reads p99 after the growth drain", "rollups of station-0 rebuilt in",
		"api: 24440 readings stored", "p50/p99 stations", "round 2/2: drain with rollups done", "round 2/2: live, stateless done"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, bad := range []string{"duplicated readings", "still pending"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("correctness check failed:\n%s", out.String())
		}
	}
}

func TestMedianKeepsTheMiddleRunAndEveryRunsChecks(t *testing.T) {
	t.Parallel()
	run := func(readings int, rss int64, duplicates int, pending int64) result {
		return result{readings: readings, elapsed: time.Second, peakRSS: rss, duplicates: duplicates, pending: pending, cpu: time.Duration(readings),
			p99: time.Duration(100 - readings)}
	}
	m := median([]result{run(30, 1, 0, 0), run(10, 5, 1, 0), run(20, 2, 0, 2)})
	if m.readings != 20 || m.cpu != 20 {
		t.Errorf("median of rates 30, 10, 20 is the run of %d readings/s, want 20", m.readings)
	}
	if !slices.Equal(m.rates, []float64{10, 20, 30}) || m.peakRSS != 5 || m.duplicates != 1 || m.pending != 2 {
		t.Errorf("median kept rates %v, peak RSS %d, %d duplicates, %d pending; want [10 20 30], 5, 1, 2", m.rates, m.peakRSS, m.duplicates, m.pending)
	}
	if m.p99 != 80 || m.worstP99() != 90 || !slices.Equal(m.p99s, []time.Duration{70, 80, 90}) {
		t.Errorf("median kept p99 %d, worst %d of %v; want the median run's 80, the worst 90 of [70 80 90]", m.p99, m.worstP99(), m.p99s)
	}
	if m := median([]result{run(40, 0, 0, 0), run(10, 0, 0, 0), run(30, 0, 0, 0), run(20, 0, 0, 0)}); m.readings != 20 {
		t.Errorf("median of four runs is the run of %d readings/s, want the slower of the middle two, 20", m.readings)
	}
}
