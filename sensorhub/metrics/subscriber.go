package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// SubscriberSource is what a SubscriberCollector reads; *redis.Subscriber
// implements it.
type SubscriberSource interface {
	Stats() redis.SubscriberStats
}

// The stream subscriber's metrics. Names are a contract with dashboards: do
// not rename.
var (
	subscriberGroupsRecreatedDesc = prometheus.NewDesc("sensorhub_redis_groups_recreated_total",
		"Consumer groups the subscriber created again after Redis lost them (NOGROUP): a Redis restart without persistence, or a deleted stream. Entries Redis lost with them were never delivered.", nil, nil)
	subscriberPoisonedDesc = prometheus.NewDesc("sensorhub_redis_entries_poisoned_total",
		"Stream entries the subscriber moved to the poison stream itself, before the hub saw them, by reason: redelivery_limit (delivered too often) or too_large (a field over the message limit, never read).", []string{"reason"}, nil)
	subscriberRefusedDesc = prometheus.NewDesc("sensorhub_redis_errors_total",
		"Redis commands of the transport (reading, acking, poisoning) that Redis refused for a reason retrying cannot fix, by kind: NOPERM (the ACL user lacks a right), WRONGTYPE, CROSSSLOT, NOSCRIPT, EXECABORT, ERR (unknown command). /healthcheck shows them for a minute.", []string{"kind"}, nil)
)

// SubscriberCollector is a prometheus.Collector that reads a stream
// subscriber's Stats on every scrape. It is safe for concurrent use.
//
// Its groups-recreated counter is the one trace of a loss no other metric
// shows: entries that Redis acknowledged to producers and then lost with
// the consumer group are neither received, stored nor poisoned. Entries it
// poisons itself are not in the hub's sensorhub_messages_poisoned_total.
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
	ch <- subscriberPoisonedDesc
	ch <- subscriberRefusedDesc
}

// Collect implements prometheus.Collector.
func (c *SubscriberCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.sub.Stats()
	ch <- prometheus.MustNewConstMetric(subscriberGroupsRecreatedDesc, prometheus.CounterValue, float64(s.GroupsRecreated))
	ch <- prometheus.MustNewConstMetric(subscriberPoisonedDesc, prometheus.CounterValue, float64(s.Poisoned), redis.ReasonRedeliveryLimit)
	ch <- prometheus.MustNewConstMetric(subscriberPoisonedDesc, prometheus.CounterValue, float64(s.TooLarge), sensorhub.ReasonTooLarge)
	for kind, n := range s.RefusedCommands {
		ch <- prometheus.MustNewConstMetric(subscriberRefusedDesc, prometheus.CounterValue, float64(n), kind)
	}
}

// Interface guards.
var (
	_ prometheus.Collector = (*SubscriberCollector)(nil)
	_ SubscriberSource     = (*redis.Subscriber)(nil)
)
