package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RollupStats is what a RollupCollector reports about rollups (DESIGN.md
// §14). It mirrors the rollup package's Worker stats so that this package
// does not depend on the Postgres sink; the caller copies the fields over.
type RollupStats struct {
	// Passes counts completed passes of this process's rollup worker.
	Passes uint64
	// Failed counts its failed passes, each tried again later.
	Failed uint64
	// Recomputed counts the 5-minute buckets it recomputed, with their
	// hours and days.
	Recomputed uint64
	// Dropped counts invalidations past the raw retention horizon it
	// dropped without recomputing.
	Dropped uint64
	// Lag is the age of the oldest pending recomputation at MeasuredAt,
	// across every replica.
	Lag time.Duration
	// MeasuredAt is when Lag was measured; zero before the first
	// measurement, when the lag is not reported.
	MeasuredAt time.Time
}

// The rollup metrics. Names are a contract with dashboards: do not rename.
var (
	rollupPassesDesc = prometheus.NewDesc("sensorhub_rollup_passes_total",
		"Completed passes of this process's rollup worker over the invalidation log.", nil, nil)
	rollupFailedDesc = prometheus.NewDesc("sensorhub_rollup_pass_failures_total",
		"Failed passes of this process's rollup worker; each is tried again later.", nil, nil)
	rollupRecomputedDesc = prometheus.NewDesc("sensorhub_rollup_buckets_recomputed_total",
		"5-minute buckets this process recomputed from readings, with their hours and days.", nil, nil)
	rollupDroppedDesc = prometheus.NewDesc("sensorhub_rollup_invalidations_dropped_total",
		"Invalidations of buckets older than the raw retention horizon, dropped without recomputing.", nil, nil)
	rollupLagDesc = prometheus.NewDesc("sensorhub_rollup_lag_seconds",
		"Age of the oldest pending rollup recomputation, across every replica; 0 when none is pending.", nil, nil)
	rollupMeasuredDesc = prometheus.NewDesc("sensorhub_rollup_lag_measured_timestamp_seconds",
		"When sensorhub_rollup_lag_seconds was last measured, in seconds since the Unix epoch.", nil, nil)
)

// RollupCollector is a prometheus.Collector that reads rollup statistics
// on every scrape. It is safe for concurrent use if the stats function is.
type RollupCollector struct {
	stats func() RollupStats
}

// NewRollupCollector returns a collector that calls stats on every scrape.
func NewRollupCollector(stats func() RollupStats) (*RollupCollector, error) {
	if stats == nil {
		return nil, errors.New("metrics: rollup collector: stats function is required")
	}
	return &RollupCollector{stats: stats}, nil
}

// Describe implements prometheus.Collector.
func (c *RollupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rollupPassesDesc, rollupFailedDesc, rollupRecomputedDesc, rollupDroppedDesc, rollupLagDesc, rollupMeasuredDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *RollupCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(rollupPassesDesc, prometheus.CounterValue, float64(s.Passes))
	ch <- prometheus.MustNewConstMetric(rollupFailedDesc, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(rollupRecomputedDesc, prometheus.CounterValue, float64(s.Recomputed))
	ch <- prometheus.MustNewConstMetric(rollupDroppedDesc, prometheus.CounterValue, float64(s.Dropped))
	if s.MeasuredAt.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(rollupLagDesc, prometheus.GaugeValue, s.Lag.Seconds())
	ch <- prometheus.MustNewConstMetric(rollupMeasuredDesc, prometheus.GaugeValue, float64(s.MeasuredAt.UnixNano())/1e9)
}

// Interface guards.
var _ prometheus.Collector = (*RollupCollector)(nil)
