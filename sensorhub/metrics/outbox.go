package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OutboxStats is what an OutboxCollector reports about an outbox forwarder.
// It mirrors the forwarder's own Stats so that this package does not depend
// on the Postgres sink; the caller copies the fields over.
type OutboxStats struct {
	// Forwarded counts events published to the events stream.
	Forwarded uint64
	// Failed counts failed publish attempts, each retried.
	Failed uint64
	// Pending counts committed events not yet forwarded, at MeasuredAt.
	Pending int64
	// Lag is the age of the oldest of them at MeasuredAt, zero when none.
	Lag time.Duration
	// MeasuredAt is when Pending and Lag were measured; zero before the
	// first measurement, when they are not reported.
	MeasuredAt time.Time
}

// The outbox metrics. Names are a contract with dashboards: do not rename.
var (
	outboxForwardedDesc = prometheus.NewDesc("sensorhub_outbox_forwarded_total",
		"Events the outbox forwarder published to the events stream; one published again after a crash counts again.", nil, nil)
	outboxFailedDesc = prometheus.NewDesc("sensorhub_outbox_failed_total",
		"Failed attempts of the outbox forwarder to publish an event; each is retried.", nil, nil)
	outboxPendingDesc = prometheus.NewDesc("sensorhub_outbox_pending_events",
		"Committed events not yet forwarded, at the last measurement.", nil, nil)
	outboxLagDesc = prometheus.NewDesc("sensorhub_outbox_lag_seconds",
		"Age of the oldest committed event not yet forwarded, at the last measurement; 0 when none.", nil, nil)
	outboxMeasuredDesc = prometheus.NewDesc("sensorhub_outbox_last_measured_timestamp_seconds",
		"When the outbox was last measured, in seconds since the Unix epoch: pending events and lag are this old.", nil, nil)
)

// OutboxCollector is a prometheus.Collector that reads an outbox
// forwarder's statistics on every scrape. It is safe for concurrent use if
// the stats function is.
type OutboxCollector struct {
	stats func() OutboxStats
}

// NewOutboxCollector returns a collector that calls stats on every scrape.
func NewOutboxCollector(stats func() OutboxStats) (*OutboxCollector, error) {
	if stats == nil {
		return nil, errors.New("metrics: outbox collector: stats function is required")
	}
	return &OutboxCollector{stats: stats}, nil
}

// Describe implements prometheus.Collector.
func (c *OutboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{outboxForwardedDesc, outboxFailedDesc, outboxPendingDesc, outboxLagDesc, outboxMeasuredDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *OutboxCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(outboxForwardedDesc, prometheus.CounterValue, float64(s.Forwarded))
	ch <- prometheus.MustNewConstMetric(outboxFailedDesc, prometheus.CounterValue, float64(s.Failed))
	if s.MeasuredAt.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxPendingDesc, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(outboxLagDesc, prometheus.GaugeValue, s.Lag.Seconds())
	ch <- prometheus.MustNewConstMetric(outboxMeasuredDesc, prometheus.GaugeValue, float64(s.MeasuredAt.UnixNano())/1e9)
}

// Interface guards.
var _ prometheus.Collector = (*OutboxCollector)(nil)
