package metrics_test

import (
	"io"
	"log/slog"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// sample is one gathered series.
type sample struct {
	labels map[string]string
	value  float64
}

// samples maps series names to their samples; a histogram h appears as
// h_count and h_sum.
type samples map[string][]sample

// value returns the value of the series name whose labels include labels.
func (s samples) value(name string, labels map[string]string) (float64, bool) {
	for _, m := range s[name] {
		match := true
		for k, v := range labels {
			match = match && m.labels[k] == v
		}
		if match {
			return m.value, true
		}
	}
	return 0, false
}

// gather collects g, a Gatherer or a Collector, into samples.
func gather(t *testing.T, g any) samples {
	t.Helper()
	gatherer, ok := g.(prometheus.Gatherer)
	if !ok {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(g.(prometheus.Collector))
		gatherer = reg
	}
	families, err := gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := samples{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			add := func(suffix string, v float64) {
				out[f.GetName()+suffix] = append(out[f.GetName()+suffix], sample{labels: maps.Clone(labels), value: v})
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add("", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add("", m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				add("_count", float64(m.GetHistogram().GetSampleCount()))
				add("_sum", m.GetHistogram().GetSampleSum())
			}
		}
	}
	return out
}

// lint fails the test for every problem promlint finds in c's metrics.
func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// prometheusLint lints everything g gathers and returns the problems as text.
func prometheusLint(g prometheus.Gatherer) ([]string, error) {
	problems, err := testutil.GatherAndLint(g)
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p.Metric + ": " + p.Text
	}
	return out, err
}
