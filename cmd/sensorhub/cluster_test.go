package main

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/checker"
	"github.com/sensorhub/sensorhub/internal/testserver"
	"github.com/sensorhub/sensorhub/sensorhub"
)

// TestServiceOnRedisCluster runs the service against a Redis Cluster of
// three masters with REDIS_CLUSTER=true, seeded from a cluster URL that
// names every node, and hash-tagged stream names: readings over the stream
// and over the bridge are stored once, an invalid one is poisoned into the
// poison stream beside the stream, and events reach the events stream.
// Names without a shared hash tag are refused at start-up, naming the
// variable.
func TestServiceOnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := testserver.StartRedisCluster(t, 3, 0)
	client := goredis.NewClusterClient(cluster.Options())
	t.Cleanup(func() { _ = client.Close() })

	e := newTestEnv(t)
	tag := "{" + strings.ToLower(rand.Text()[:10]) + "}"
	e.redis, e.stream = client, tag+"stream"
	events := tag + "events"
	addrs := cluster.Addrs()
	e.vars["REDIS_CLUSTER"] = "true"
	e.vars["REDIS_URL"] = "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	e.vars["SENSORHUB_STREAM"] = e.stream
	e.vars["SENSORHUB_CHANNEL"] = tag + "channel"
	e.vars["SENSORHUB_EVENTS_STREAM"] = events
	e.vars["SENSORHUB_OUTBOX_POLL_INTERVAL"] = "20ms"

	refused := e.withOwnPort(t)
	refused.vars["SENSORHUB_STREAM"] = "sensor_stream"
	if code, out := refused.cli(t, "run"); code != exitUsage || !strings.Contains(out, "SENSORHUB_STREAM") || !strings.Contains(out, "hash slot") {
		t.Errorf("run with SENSORHUB_STREAM=sensor_stream on a cluster: exit %d, want %d naming SENSORHUB_STREAM and the hash slot\n%s", code, exitUsage, out)
	}

	e.start(t, "run")
	e.waitHealthy(t)
	log := checker.NewLog()
	p := &checker.Producer{Client: client, Stream: e.stream, Log: log, Station: "cluster"}
	if err := p.Send(t.Context(), 500); err != nil {
		t.Fatal(err)
	}
	if code, out := e.cli(t, "publish", "--channel", legacyReading); code != 0 {
		t.Fatalf("publish --channel: exit %d\n%s", code, out)
	}
	e.xadd(t, "not json")

	poll.Until(t, 30*time.Second, "every reading stored and every entry acked", func() bool {
		return e.rows(t, "") == 501 && e.pending(t, "") == 0
	})
	report, err := log.Check(t.Context(), e.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	// The legacy reading is the one row no producer logged.
	if report.Lost != 0 || report.Duplicated != 0 || report.Unexpected != 1 {
		t.Errorf("history check: %s; want nothing lost or duplicated, and the bridge's one reading", report)
	}
	poisoned := e.poisoned(t)
	if len(poisoned) != 1 || poisoned[0].Values[sensorhub.MetadataReason] != sensorhub.ReasonInvalidJSON {
		t.Errorf("poison stream %s: %v, want the one invalid entry", e.stream+sensorhub.PoisonSuffix, poisoned)
	}
	poll.Until(t, 30*time.Second, "readings.stored events on "+events, func() bool {
		for _, ev := range e.events(t, events) {
			if ev.Type == sensorhub.EventReadingsStored {
				return true
			}
		}
		return false
	})
}
