package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

type bridgeStats redis.BridgeStats

func (s bridgeStats) Stats() redis.BridgeStats { return redis.BridgeStats(s) }

func TestBridgeCollectorReadsStats(t *testing.T) {
	t.Parallel()
	c, err := metrics.NewBridgeCollector(bridgeStats{Received: 7, Appended: 6, Failed: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sensorhub_bridge_received_total Messages the bridge received on the legacy Pub/Sub channel.
# TYPE sensorhub_bridge_received_total counter
sensorhub_bridge_received_total 7
# HELP sensorhub_bridge_appended_total Messages the bridge appended to the stream.
# TYPE sensorhub_bridge_appended_total counter
sensorhub_bridge_appended_total 6
# HELP sensorhub_bridge_failed_total Messages the bridge received but could not append to the stream: they are lost.
# TYPE sensorhub_bridge_failed_total counter
sensorhub_bridge_failed_total 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	lint(t, c)
	if _, err := metrics.NewBridgeCollector(nil); err == nil {
		t.Error("NewBridgeCollector(nil) succeeded")
	}
}
