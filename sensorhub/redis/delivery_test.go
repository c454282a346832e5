package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
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

	const maxIdle = time.Second
	cfg := redis.Config{Stream: stream, MaxIdleTime: maxIdle, ClaimInterval: maxIdle / 5, MaxInFlight: len(ids)}
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

	// Held for four claim-idle periods: the idle consumer claims nothing,
	// and Redis counts one delivery of each entry.
	expectNone(t, idleCh, 4*maxIdle)
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
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
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

// The pending re-read at start and XAUTOCLAIM may both return entries this
// consumer left pending, idle long enough to be claimed (a restart during an
// outage). Here the claim comes first, and the re-read returns the same
// entries after it: each must be delivered once.
func TestSubscriberDeliversEntryOnceWhenClaimAndReReadMeet(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "claimreread")
	ctx := t.Context()
	if err := client.XGroupCreateMkStream(ctx, stream, redis.DefaultGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	ids := addEntries(t, client, stream, 3, "left")
	// An earlier run of the same consumer read them and stopped.
	if err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: redis.DefaultGroup, Consumer: "restarted", Streams: []string{stream, ">"}, Count: 10,
	}).Err(); err != nil {
		t.Fatal(err)
	}
	const maxIdle = 300 * time.Millisecond
	time.Sleep(maxIdle) // idle enough to be claimed

	c := redistest.Client(t)
	claimed := make(chan struct{})
	c.AddHook(&claimBeforeReRead{claimed: claimed})
	sub := newTestSubscriber(t, redis.Config{Client: c, Stream: stream, Consumer: "restarted",
		MaxIdleTime: maxIdle, ClaimInterval: maxIdle / 3})
	ch, err := sub.Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var got []*message.Message
	for range ids {
		got = append(got, mustReceive(t, ch))
	}
	select {
	case <-claimed:
	default:
		t.Fatal("the entries came before XAUTOCLAIM claimed them")
	}
	// The re-read has returned them again by now; nothing may follow.
	expectNone(t, ch, time.Second)
	if gotIDs := entryIDs(got); !sameSet(gotIDs, ids) {
		t.Fatalf("delivered %v, want %v once each", gotIDs, ids)
	}
	if s := sub.Stats(); s.Delivered != uint64(len(ids)) {
		t.Errorf("Stats = %+v, want %d delivered", s, len(ids))
	}
	for _, m := range got {
		m.Ack()
	}
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
}

// claimBeforeReRead is a go-redis hook that holds the re-read of the
// consumer's pending list (XREADGROUP ... 0) until an XAUTOCLAIM has
// claimed something, and then closes claimed.
type claimBeforeReRead struct {
	claimed chan struct{}
	once    sync.Once
}

func (h *claimBeforeReRead) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *claimBeforeReRead) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		args := cmd.Args()
		if cmd.Name() == "xreadgroup" && args[len(args)-1] == "0" {
			select {
			case <-h.claimed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := next(ctx, cmd)
		if c, ok := cmd.(*goredis.XAutoClaimCmd); ok && err == nil {
			if entries, _ := c.Val(); len(entries) > 0 {
				h.once.Do(func() { close(h.claimed) })
			}
		}
		return err
	}
}

func (h *claimBeforeReRead) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// Restarts re-read the pending list, which raises Redis's delivery count
// each time; only nacks may spend the budget.
func TestSubscriberRestartsSpendNoRedeliveryBudget(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "restarts")
	id := addEntries(t, client, stream, 1, "x")[0]
	cfg := redis.Config{Consumer: "restarting", MaxDeliveries: 2, CloseTimeout: 50 * time.Millisecond}

	const restarts = 5
	for range restarts {
		sub, ch := subscribe(t, stream, cfg)
		mustReceive(t, ch) // never finished: the process stops
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
	second, ch := subscribe(t, stream, cfg)
	for nack := range cfg.MaxDeliveries {
		m := mustReceive(t, ch)
		if got := m.Metadata.Get(sensorhub.MetadataEntryID); got != id {
			t.Fatalf("delivery after nack %d: entry %s, want %s", nack, got, id)
		}
		m.Nack()
	}
	poison := waitForPoison(t, client, stream)
	if want := "redelivery_limit: delivered 2 times, limit 2"; poison.Values[sensorhub.MetadataError] != want {
		t.Errorf("poison error = %q, want %q", poison.Values[sensorhub.MetadataError], want)
	}
	if s := second.Stats(); s.Poisoned != 1 || s.Delivered != 2 {
		t.Errorf("Stats = %+v, want 2 delivered and 1 poisoned", s)
	}
	if n := client.HLen(t.Context(), stream+":nacks").Val(); n != 0 {
		t.Errorf("%d nack counts left after poisoning, want none", n)
	}
}

// The hub nacks the messages that wait for the database when it stops, as
// the subscription ends: such a nack is no failure of the message and must
// leave it pending with its budget unspent.
func TestSubscriberNackAtStopSpendsNoRedeliveryBudget(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "nackatstop")
	id := addEntries(t, client, stream, 1, "waiting")[0]
	cfg := redis.Config{Consumer: "stopping", MaxDeliveries: 1, NackDelay: 500 * time.Millisecond}

	for range 3 {
		sub, ch := subscribe(t, stream, cfg)
		mustReceive(t, ch).Nack()
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		if n := client.XLen(t.Context(), stream+sensorhub.PoisonSuffix).Val(); n != 0 {
			t.Fatalf("entry poisoned by nacks at stop")
		}
	}
	_, ch := subscribe(t, stream, cfg)
	m := mustReceive(t, ch)
	if got := m.Metadata.Get(sensorhub.MetadataEntryID); got != id {
		t.Fatalf("delivered %s after the restarts, want %s", got, id)
	}
	m.Ack()
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
	if n := client.XLen(t.Context(), stream+sensorhub.PoisonSuffix).Val(); n != 0 {
		t.Errorf("%d entries poisoned", n)
	}
}
