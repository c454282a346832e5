package metrics_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

func TestRedisCollectorStats(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "stats")
	ctx := t.Context()
	c, err := metrics.NewRedisCollector(metrics.RedisConfig{Client: client, Stream: stream, Group: "g", PoisonStream: stream + ":dead"})
	if err != nil {
		t.Fatal(err)
	}
	// No stream, no group yet: the lag is unknown.
	if s, err := c.Stats(ctx); err != nil || s != (metrics.RedisStats{ConsumerLag: -1}) {
		t.Errorf("Stats before the group = %+v, %v", s, err)
	}
	if err := client.XGroupCreateMkStream(ctx, stream, "g", "$").Err(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "{}"}})
	}
	if _, err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 1}).Result(); err != nil {
		t.Fatal(err)
	}
	client.XAdd(ctx, &goredis.XAddArgs{Stream: stream + ":dead", Values: []any{"payload", "x"}})
	client.XAdd(ctx, &goredis.XAddArgs{Stream: stream + ":dead", Values: []any{"payload", "y"}})
	want := metrics.RedisStats{PoisonQueueLength: 2, ConsumerLag: 3, PendingEntries: 1}
	if s, err := c.Stats(ctx); err != nil || s != want {
		t.Errorf("Stats = %+v, %v; want %+v", s, err, want)
	}
}
