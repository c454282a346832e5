package metrics_test

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
)

func TestOutboxCollector(t *testing.T) {
	t.Parallel()
	stats := metrics.OutboxStats{Forwarded: 9, Failed: 2}
	c, err := metrics.NewOutboxCollector(func() metrics.OutboxStats { return stats })
	if err != nil {
		t.Fatal(err)
	}

	got := gather(t, c)
	if v, _ := got.value("sensorhub_outbox_forwarded_total", nil); v != 9 {
		t.Errorf("forwarded = %v, want 9", v)
	}
	if v, _ := got.value("sensorhub_outbox_failed_total", nil); v != 2 {
		t.Errorf("failed = %v, want 2", v)
	}
	if _, ok := got.value("sensorhub_outbox_lag_seconds", nil); ok {
		t.Error("lag reported before the first measurement")
	}

	measured := time.Unix(1_700_000_000, 500_000_000)
	stats.Pending, stats.Lag, stats.MeasuredAt = 4, 1500*time.Millisecond, measured
	got = gather(t, c)
	for name, want := range map[string]float64{
		"sensorhub_outbox_pending_events":                  4,
		"sensorhub_outbox_lag_seconds":                     1.5,
		"sensorhub_outbox_last_measured_timestamp_seconds": 1_700_000_000.5,
	} {
		if v, ok := got.value(name, nil); !ok || v != want {
			t.Errorf("%s = %v (present %t), want %v", name, v, ok, want)
		}
	}
	lint(t, c)
	if _, err := metrics.NewOutboxCollector(nil); err == nil {
		t.Error("NewOutboxCollector(nil) succeeded")
	}
}
