package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// SubscriberSource is what a SubscriberCollector reads; *redis.Subscriber
// implements it.
type SubscriberSource interface {
	Stats() redis.SubscriberStats
}

// The stream subscriber's metrics. Names are a contract with dashboards: do
// not rename.
var subscriberGroupsRecreatedDesc = prometheus.NewDesc("sensorhub_redis_groups_recreated_total",
	"Consumer groups the subscriber created again after Redis lost them (NOGROUP): a Redis restart without persistence, or a deleted stream. Entries Redis lost with them were never delivered.", nil, nil)

// SubscriberCollector is a prometheus.Collector that reads a stream
// subscriber's Stats on every scrape. It is safe for concurrent use.
//
// Its counter is the one trace of a loss no other metric shows: entries
// that Redis acknowledged to producers and then lost with the consumer
// group are neither received, stored nor poisoned.
type SubscriberCollector struct {
	sub SubscriberSource
}

// NewSubscriberCollector returns a collector over sub, usually a
// *redis.Subscriber.
func NewSubscriberCollector(sub SubscriberSource) (*SubscriberCollector, error) {
	if sub == nil {
		return nil, errors.New("metrics: subscriber collector: subscriber is required")
	}
	return &SubscriberCollector{sub: sub}, nil
}

// Describe implements prometheus.Collector.
func (c *SubscriberCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- subscriberGroupsRecreatedDesc
}

// Collect implements prometheus.Collector.
func (c *SubscriberCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.sub.Stats()
	ch <- prometheus.MustNewConstMetric(subscriberGroupsRecreatedDesc, prometheus.CounterValue, float64(s.GroupsRecreated))
}

// Interface guards.
var (
	_ prometheus.Collector = (*SubscriberCollector)(nil)
	_ SubscriberSource     = (*redis.Subscriber)(nil)
)
