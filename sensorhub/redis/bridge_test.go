package redis_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// TestBridgeStopAppendsEveryMessageItReceived stops the bridge while
// messages are published as fast as Redis takes them. Every PUBLISH that
// Redis counted as received by the bridge must end up in the stream: Redis
// does not redeliver, so a message read off the subscription late must
// still be appended, not dropped with the connection.
func TestBridgeStopAppendsEveryMessageItReceived(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	for round := range 5 {
		stream := redistest.Name(t, "bridge_stop")
		channel := stream + "_ch"
		bridge, err := redis.NewBridge(redis.BridgeConfig{Client: client, Channel: channel, Stream: stream, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := bridge.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Publish until nobody has listened for 20 messages in a row.
		heard := make(chan int64, 1)
		go func() {
			var n, unheard int64
			for i := 0; unheard < 20; i++ {
				receivers, err := client.Publish(context.Background(), channel, strconv.Itoa(i)).Result()
				if err != nil {
					t.Error(err)
					break
				}
				if receivers == 0 {
					unheard++
				}
				n += receivers
			}
			heard <- n
		}()
		time.Sleep(50 * time.Millisecond)
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = bridge.Stop(stopCtx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		n := <-heard
		s := bridge.Stats()
		if got := client.XLen(t.Context(), stream).Val(); got != n || s.Received != uint64(n) || s.Appended != uint64(n) {
			t.Fatalf("round %d: Redis delivered %d messages to the bridge; it received %d, appended %d, and the stream holds %d",
				round, n, s.Received, s.Appended, got)
		}
	}
}

// TestBridgeRetriesEndWhenStopGivesUp: a message whose append keeps failing
// is retried while Stop waits, and given up, counted as failed, as soon as
// Stop's context ends, not after the rest of its attempts' backoff.
func TestBridgeRetriesEndWhenStopGivesUp(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "bridge_giveup")
	channel := stream + "_ch"
	// A string under the stream's name: every XADD fails with WRONGTYPE.
	if err := client.Set(t.Context(), stream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	bridge, err := redis.NewBridge(redis.BridgeConfig{Client: client, Channel: channel, Stream: stream, AppendAttempts: 100,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := bridge.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := client.Publish(t.Context(), channel, "reading").Err(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "message received", func() bool { return bridge.Stats().Received == 1 })
	stopCtx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := bridge.Stop(stopCtx); err == nil {
		t.Fatal("Stop returned nil while an append was still being retried")
	}
	// 100 attempts at up to 5 s apart would take minutes.
	poll.Until(t, 10*time.Second, "message counted as failed", func() bool { return bridge.Stats().Failed == 1 })
}
