package redis_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// With every slot taken by a message whose handler waits (for a database
// that is down, say), the claimer waits for a free slot; keep-alive must
// not wait with it, or the entries in hand go idle and a second consumer
// claims them: processed twice.
func TestSubscriberKeepsEntriesInHandWithEverySlotTaken(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "fullkeepalive")
	ids := addEntries(t, client, stream, 3, "waiting")

	const maxIdle = 600 * time.Millisecond
	cfg := redis.Config{Stream: stream, MaxIdleTime: maxIdle, ClaimInterval: maxIdle / 6, MaxInFlight: len(ids)}
	cfg.Consumer = "busy"
	_, busy := subscribe(t, stream, cfg)
	var held []*message.Message
	for range ids {
		held = append(held, mustReceive(t, busy))
	}
	cfg.Consumer, cfg.MaxInFlight = "idle", 0
	idle := newTestSubscriber(t, cfg)
	idleCh, err := idle.Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}

	// Held for five claim-idle periods: the idle consumer claims nothing,
	// and Redis counts one delivery of each entry.
	expectNone(t, idleCh, 5*maxIdle)
	if s := idle.Stats(); s.Claimed != 0 {
		t.Errorf("the idle consumer claimed %d entries in the busy one's hands", s.Claimed)
	}
	p, err := client.XPendingExt(t.Context(), &goredis.XPendingExtArgs{
		Stream: stream, Group: redis.DefaultGroup, Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil || len(p) != len(ids) {
		t.Fatalf("XPENDING = %v, %v", p, err)
	}
	for _, e := range p {
		if e.Consumer != "busy" || e.RetryCount != 1 {
			t.Errorf("pending entry %s: consumer %s, %d deliveries; want busy, 1", e.ID, e.Consumer, e.RetryCount)
		}
	}
	for _, m := range held {
		m.Ack()
	}
	waitFor(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
}

func TestConfigValidateRequiresClaimIntervalsWithinMaxIdleTime(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		idle     time.Duration
		interval time.Duration
		ok       bool
	}{
		{"three intervals", 3 * time.Second, time.Second, true},
		{"under three intervals", 2 * time.Second, time.Second, false},
		{"interval over a third of the default idle time", 0, 11 * time.Second, false},
		{"idle time under the default interval, interval defaulted", 2 * time.Second, 0, true},
	} {
		err := redis.Config{Options: &goredis.Options{}, MaxIdleTime: c.idle, ClaimInterval: c.interval}.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", c.name, err, c.ok)
		}
	}
}
