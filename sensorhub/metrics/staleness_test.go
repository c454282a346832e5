package metrics_test

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
)

func TestStalenessCollector(t *testing.T) {
	t.Parallel()
	stats := metrics.StalenessStats{Sweeps: 7, Failed: 1, Stale: 3, Recovered: 2}
	c, err := metrics.NewStalenessCollector(func() metrics.StalenessStats { return stats })
	if err != nil {
		t.Fatal(err)
	}

	got := gather(t, c)
	for name, want := range map[string]float64{"sensorhub_staleness_sweeps_total": 7, "sensorhub_staleness_sweep_failures_total": 1} {
		if v, ok := got.value(name, nil); !ok || v != want {
			t.Errorf("%s = %v (present %t), want %v", name, v, ok, want)
		}
	}
	for typ, want := range map[string]float64{"sensor.stale": 3, "sensor.recovered": 2} {
		if v, ok := got.value("sensorhub_staleness_events_total", map[string]string{"type": typ}); !ok || v != want {
			t.Errorf("events of type %s = %v (present %t), want %v", typ, v, ok, want)
		}
	}
	if _, ok := got.value("sensorhub_sensor_stale", nil); ok {
		t.Error("sensor states reported before the first measurement")
	}

	stats.Series = []metrics.SeriesState{{Station: "roof", Sensor: "temperature", Stale: true}, {Station: "roof", Sensor: "humidity"}}
	stats.MeasuredAt = time.Unix(1_700_000_000, 0)
	got = gather(t, c)
	for sensor, want := range map[string]float64{"temperature": 1, "humidity": 0} {
		if v, ok := got.value("sensorhub_sensor_stale", map[string]string{"station": "roof", "sensor": sensor}); !ok || v != want {
			t.Errorf("roof/%s stale = %v (present %t), want %v", sensor, v, ok, want)
		}
	}
	if v, _ := got.value("sensorhub_staleness_last_measured_timestamp_seconds", nil); v != 1_700_000_000 {
		t.Errorf("last measured = %v", v)
	}
	lint(t, c)
	if _, err := metrics.NewStalenessCollector(nil); err == nil {
		t.Error("NewStalenessCollector(nil) succeeded")
	}
}
