package redis_test

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/testserver"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// TestSentinelFailover runs the transport through go-redis's failover
// client on a Sentinel-managed Redis, and kills the master with SIGKILL
// while entries arrive: the sentinel promotes the replica, the failover
// client follows, and the subscriber goes on.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	sentinel := testserver.StartRedisSentinel(t)
	client := goredis.NewFailoverClient(sentinel.FailoverOptions())
	t.Cleanup(func() { _ = client.Close() })
	producer := goredis.NewFailoverClient(sentinel.FailoverOptions())
	t.Cleanup(func() { _ = producer.Close() })
	const stream = "sensor_stream"
	tr := newTransport(t, redis.Config{Client: client, Stream: stream, MaxIdleTime: failoverClaimIdle, BlockTime: 100 * time.Millisecond,
		CloseTimeout: time.Second, Logger: testLogger(t)})
	checkSurvivesTopologyChange(t, tr, client, producer, stream, func() {
		if err := sentinel.Master.Kill(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		poll.Until(t, 30*time.Second, "the sentinel's failover to the replica", func() bool {
			addr, err := sentinel.MasterAddr(t.Context())
			return err == nil && addr == sentinel.Replica.Addr
		})
		t.Logf("master killed; the sentinel named the replica master after %s", time.Since(killed).Round(time.Millisecond))
	})
}
