package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// BridgeSource is what a BridgeCollector reads; *redis.Bridge implements it.
type BridgeSource interface {
	Stats() redis.BridgeStats
}

// The bridge's metrics. They have names of their own rather than a source
// label on sensorhub_messages_received_total: every message the bridge
// appends is received by the hub again, and a sum over sources would count
// it twice. Names are a contract with dashboards: do not rename.
var (
	bridgeReceivedDesc = prometheus.NewDesc("sensorhub_bridge_received_total",
		"Messages the bridge received on the legacy Pub/Sub channel.", nil, nil)
	bridgeAppendedDesc = prometheus.NewDesc("sensorhub_bridge_appended_total",
		"Messages the bridge appended to the stream.", nil, nil)
	bridgeFailedDesc = prometheus.NewDesc("sensorhub_bridge_failed_total",
		"Messages the bridge received but could not append to the stream: they are lost.", nil, nil)
)

// BridgeCollector is a prometheus.Collector that reads a Pub/Sub bridge's
// Stats on every scrape. It is safe for concurrent use.
type BridgeCollector struct {
	bridge BridgeSource
}

// NewBridgeCollector returns a collector over bridge, usually a
// *redis.Bridge.
func NewBridgeCollector(bridge BridgeSource) (*BridgeCollector, error) {
	if bridge == nil {
		return nil, errors.New("metrics: bridge collector: bridge is required")
	}
	return &BridgeCollector{bridge: bridge}, nil
}

// Describe implements prometheus.Collector.
func (c *BridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- bridgeReceivedDesc
	ch <- bridgeAppendedDesc
	ch <- bridgeFailedDesc
}

// Collect implements prometheus.Collector.
func (c *BridgeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.bridge.Stats()
	ch <- prometheus.MustNewConstMetric(bridgeReceivedDesc, prometheus.CounterValue, float64(s.Received))
	ch <- prometheus.MustNewConstMetric(bridgeAppendedDesc, prometheus.CounterValue, float64(s.Appended))
	ch <- prometheus.MustNewConstMetric(bridgeFailedDesc, prometheus.CounterValue, float64(s.Failed))
}

// Interface guards.
var (
	_ prometheus.Collector = (*BridgeCollector)(nil)
	_ BridgeSource         = (*redis.Bridge)(nil)
)
