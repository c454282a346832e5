package metrics_test

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
)

func TestRollupCollector(t *testing.T) {
	t.Parallel()
	stats := metrics.RollupStats{Passes: 9, Failed: 1, Recomputed: 40, Dropped: 2}
	c, err := metrics.NewRollupCollector(func() metrics.RollupStats { return stats })
	if err != nil {
		t.Fatal(err)
	}
	got := gather(t, c)
	for name, want := range map[string]float64{"sensorhub_rollup_passes_total": 9, "sensorhub_rollup_pass_failures_total": 1,
		"sensorhub_rollup_buckets_recomputed_total": 40, "sensorhub_rollup_invalidations_dropped_total": 2} {
		if v, ok := got.value(name, nil); !ok || v != want {
			t.Errorf("%s = %v (present %t), want %v", name, v, ok, want)
		}
	}
	if _, ok := got.value("sensorhub_rollup_lag_seconds", nil); ok {
		t.Error("lag reported before the first measurement")
	}

	stats.Lag, stats.MeasuredAt = 1500*time.Millisecond, time.Unix(1_700_000_000, 0)
	got = gather(t, c)
	if v, _ := got.value("sensorhub_rollup_lag_seconds", nil); v != 1.5 {
		t.Errorf("lag = %v, want 1.5", v)
	}
	if v, _ := got.value("sensorhub_rollup_lag_measured_timestamp_seconds", nil); v != 1_700_000_000 {
		t.Errorf("measured = %v", v)
	}
	lint(t, c)
	if _, err := metrics.NewRollupCollector(nil); err == nil {
		t.Error("NewRollupCollector(nil) succeeded")
	}
}
