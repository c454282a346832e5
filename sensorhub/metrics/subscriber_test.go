package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

type subscriberStats redis.SubscriberStats

func (s subscriberStats) Stats() redis.SubscriberStats { return redis.SubscriberStats(s) }

func TestSubscriberCollectorReadsStats(t *testing.T) {
	t.Parallel()
	c, err := metrics.NewSubscriberCollector(subscriberStats{GroupsRecreated: 2, Delivered: 9, Poisoned: 3, TooLarge: 4,
		RefusedCommands: map[string]uint64{"NOPERM": 5, "CROSSSLOT": 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sensorhub_redis_groups_recreated_total Consumer groups the subscriber created again after Redis lost them (NOGROUP): a Redis restart without persistence, or a deleted stream. Entries Redis lost with them were never delivered.
# TYPE sensorhub_redis_groups_recreated_total counter
sensorhub_redis_groups_recreated_total 2
# HELP sensorhub_redis_entries_poisoned_total Stream entries the subscriber moved to the poison stream itself, before the hub saw them, by reason: redelivery_limit (delivered too often) or too_large (a field over the message limit, never read).
# TYPE sensorhub_redis_entries_poisoned_total counter
sensorhub_redis_entries_poisoned_total{reason="redelivery_limit"} 3
sensorhub_redis_entries_poisoned_total{reason="too_large"} 4
# HELP sensorhub_redis_errors_total Redis commands of the transport (reading, acking, poisoning) that Redis refused for a reason retrying cannot fix, by kind: NOPERM (the ACL user lacks a right), WRONGTYPE, CROSSSLOT, NOSCRIPT, EXECABORT, ERR (unknown command). /healthcheck shows them for a minute.
# TYPE sensorhub_redis_errors_total counter
sensorhub_redis_errors_total{kind="CROSSSLOT"} 1
sensorhub_redis_errors_total{kind="NOPERM"} 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	lint(t, c)
	if _, err := metrics.NewSubscriberCollector(nil); err == nil {
		t.Error("NewSubscriberCollector(nil) succeeded")
	}
}
