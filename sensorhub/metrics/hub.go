package metrics

import (
	"errors"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// HubSource is what a HubCollector reads; *sensorhub.Hub implements it.
type HubSource interface {
	Stats() sensorhub.Stats
}

// The hub's metrics. Names are a contract with dashboards: do not rename.
var (
	hubReceivedDesc = prometheus.NewDesc("sensorhub_messages_received_total",
		"Messages the hub took from the stream, redeliveries included.",
		nil, prometheus.Labels{"source": "stream"})
	hubStoredDesc = prometheus.NewDesc("sensorhub_readings_stored_total",
		"Readings stored for the first time.", nil, nil)
	hubDuplicatesDesc = prometheus.NewDesc("sensorhub_readings_duplicates_total",
		"Readings dropped because they were already stored with the same value.", nil, nil)
	hubConflictsDesc = prometheus.NewDesc("sensorhub_readings_conflicts_total",
		"Readings dropped because their station, sensor and time were already stored with another value (the first write wins).", nil, nil)
	hubReplacedDesc = prometheus.NewDesc("sensorhub_readings_replaced_total",
		"Readings a device sent that replaced a value sensorhub had computed (derived readings); counted in stored too.", nil, nil)
	hubPoisonedDesc = prometheus.NewDesc("sensorhub_messages_poisoned_total",
		"Messages sent to the poison queue, by reason code.", []string{"reason"}, nil)
	hubRetriesDesc = prometheus.NewDesc("sensorhub_retries_total",
		"In-process retries of messages after transient errors.", nil, nil)
)

// HubCollector is a prometheus.Collector that reads a hub's Stats on every
// scrape. It is safe for concurrent use.
type HubCollector struct {
	hub HubSource
}

// NewHubCollector returns a collector over hub, usually a *sensorhub.Hub.
func NewHubCollector(hub HubSource) (*HubCollector, error) {
	if hub == nil {
		return nil, errors.New("metrics: hub collector: hub is required")
	}
	return &HubCollector{hub: hub}, nil
}

// Describe implements prometheus.Collector.
func (c *HubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hubReceivedDesc, hubStoredDesc, hubDuplicatesDesc, hubConflictsDesc, hubReplacedDesc, hubPoisonedDesc, hubRetriesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *HubCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.hub.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(hubReceivedDesc, s.Received)
	counter(hubStoredDesc, s.Stored)
	counter(hubDuplicatesDesc, s.Duplicates)
	counter(hubConflictsDesc, s.Conflicts)
	counter(hubReplacedDesc, s.Replaced)
	counter(hubRetriesDesc, s.Retried)
	// The library's codes are reported from zero, so that rate() and
	// increase() see the first poisoned message; others once used.
	known := sensorhub.Reasons()
	for _, reason := range known {
		counter(hubPoisonedDesc, s.Poisoned[reason], reason)
	}
	for reason, n := range s.Poisoned {
		if !slices.Contains(known, reason) {
			counter(hubPoisonedDesc, n, reason)
		}
	}
}

// Interface guards.
var (
	_ prometheus.Collector = (*HubCollector)(nil)
	_ HubSource            = (*sensorhub.Hub)(nil)
)
