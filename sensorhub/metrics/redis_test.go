package metrics_test

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

func TestRedisCollectorReportsGroupAndPoisonQueue(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "metrics")
	ctx := t.Context()
	c, err := metrics.NewRedisCollector(metrics.RedisConfig{Client: client, Stream: stream, Group: "g", PoisonStream: stream + ":dead"})
	if err != nil {
		t.Fatal(err)
	}

	// Before the hub created stream and group: Redis is up, nothing else known.
	got := gather(t, c)
	if v, ok := got.value("sensorhub_redis_up", nil); !ok || v != 1 {
		t.Errorf("redis_up = %v (present %t) without a stream, want 1", v, ok)
	}
	if v, ok := got.value("sensorhub_poison_queue_length", nil); !ok || v != 0 {
		t.Errorf("poison_queue_length = %v (present %t) without a poison stream, want 0", v, ok)
	}
	for _, name := range []string{"sensorhub_consumer_lag", "sensorhub_pending_entries"} {
		if _, ok := got.value(name, nil); ok {
			t.Errorf("%s reported without a consumer group", name)
		}
	}

	// Five entries, two of them read by a consumer and one of those acked.
	if err := client.XGroupCreateMkStream(ctx, stream, "g", "$").Err(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "{}"}})
	}
	read, err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 2}).Result()
	if err != nil || len(read[0].Messages) != 2 {
		t.Fatalf("XREADGROUP = %v, %v", read, err)
	}
	client.XAck(ctx, stream, "g", read[0].Messages[0].ID)
	client.XAdd(ctx, &goredis.XAddArgs{Stream: stream + ":dead", Values: []any{"payload", "not json"}})

	got = gather(t, c)
	for name, want := range map[string]float64{
		"sensorhub_redis_up":            1,
		"sensorhub_consumer_lag":        3,
		"sensorhub_pending_entries":     1,
		"sensorhub_poison_queue_length": 1,
	} {
		if v, ok := got.value(name, nil); !ok || v != want {
			t.Errorf("%s = %v (present %t), want %v", name, v, ok, want)
		}
	}
	lint(t, c)
}

func TestRedisCollectorReportsRedisDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	client := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })

	const timeout = 300 * time.Millisecond
	c, err := metrics.NewRedisCollector(metrics.RedisConfig{Client: client, PoisonStream: "p", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := gather(t, c) // fails the test if the scrape fails
	if d := time.Since(start); d > 5*timeout {
		t.Errorf("scrape took %s with Redis down, want about %s at most", d, timeout)
	}
	if v, ok := got.value("sensorhub_redis_up", nil); !ok || v != 0 {
		t.Errorf("redis_up = %v (present %t), want 0", v, ok)
	}
	if len(got) != 1 {
		t.Errorf("with Redis down the scrape holds %v, want sensorhub_redis_up alone", got)
	}
}

// TestRedisCollectorTimesOut scrapes a server that accepts connections and
// never answers.
func TestRedisCollectorTimesOut(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	client := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	const timeout = 300 * time.Millisecond
	c, err := metrics.NewRedisCollector(metrics.RedisConfig{Client: client, PoisonStream: "p", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := gather(t, c)
	if d := time.Since(start); d > 5*timeout {
		t.Errorf("scrape took %s against a silent server, want about %s", d, timeout)
	}
	if v, _ := got.value("sensorhub_redis_up", nil); v != 0 {
		t.Errorf("redis_up = %v against a silent server, want 0", v)
	}
}

func TestRedisConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := metrics.NewRedisCollector(metrics.RedisConfig{Timeout: -time.Second})
	if err == nil {
		t.Fatal("a config without client, without poison stream and with a negative timeout was accepted")
	}
	for _, want := range []string{"client is required", "poison stream is required", "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
