package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := redis.Config{BatchSize: -1, MaxInFlight: -2, BlockTime: -time.Second, CloseTimeout: -1, PoisonStream: sensorhub.DefaultStream}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a config without client and with negative values")
	}
	for _, want := range []string{"client, options or cluster options are required", "poison stream must differ", "batch size", "max in flight", "block time", "close timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to mention %q", err, want)
		}
	}
	if _, err := redis.New(redis.Config{}); err == nil {
		t.Error("New accepted a config without client")
	}
}

func TestSubscriberDeliversOwnPendingEntriesFirst(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "own")
	old := addEntries(t, client, stream, 5, "old")

	first, ch := subscribe(t, stream, redis.Config{Consumer: "restarting", CloseTimeout: 50 * time.Millisecond})
	for range old {
		mustReceive(t, ch) // and never acked: the process "crashes"
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(t, client, stream); n != int64(len(old)) {
		t.Fatalf("%d entries pending after Close, want %d", n, len(old))
	}
	fresh := addEntries(t, client, stream, 5, "new")

	// With as many slots as pending entries, a subscriber that read new
	// entries before its own pending ones would deliver a new one here.
	_, ch = subscribe(t, stream, redis.Config{Consumer: "restarting", MaxInFlight: len(old)})
	var got []*message.Message
	for range old {
		got = append(got, mustReceive(t, ch))
	}
	if ids := entryIDs(got); !sameSet(ids, old) {
		t.Fatalf("first deliveries after the restart = %v, want the pending entries %v", ids, old)
	}
	for _, m := range got {
		m.Ack()
	}
	got = got[:0]
	for range fresh {
		m := mustReceive(t, ch)
		m.Ack()
		got = append(got, m)
	}
	if ids := entryIDs(got); !sameSet(ids, fresh) {
		t.Fatalf("deliveries after the pending ones = %v, want the new entries %v", ids, fresh)
	}
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
}

func TestSubscriberClaimsEntriesOfDeadConsumer(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "claim")
	ctx := t.Context()
	if err := client.XGroupCreateMkStream(ctx, stream, redis.DefaultGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	ids := addEntries(t, client, stream, 3, "orphan")
	// A consumer reads them and dies without acking.
	read, err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: redis.DefaultGroup, Consumer: "dead", Streams: []string{stream, ">"}, Count: 10,
	}).Result()
	if err != nil || len(read[0].Messages) != len(ids) {
		t.Fatalf("dead consumer read: %v %v", read, err)
	}
	readAt := time.Now()

	const maxIdle = 500 * time.Millisecond
	sub, ch := subscribe(t, stream, redis.Config{
		Consumer: "alive", MaxIdleTime: maxIdle, ClaimInterval: 100 * time.Millisecond,
	})
	var got []*message.Message
	for range ids {
		m := mustReceive(t, ch)
		if idle := time.Since(readAt); idle < maxIdle {
			t.Errorf("entry %s claimed after %s, before MaxIdleTime %s", m.Metadata.Get(sensorhub.MetadataEntryID), idle, maxIdle)
		}
		got = append(got, m)
	}
	if gotIDs := entryIDs(got); !sameSet(gotIDs, ids) {
		t.Fatalf("claimed %v, want %v", gotIDs, ids)
	}
	owners, err := client.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream: stream, Group: redis.DefaultGroup, Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range owners {
		if p.Consumer != "alive" || p.RetryCount < 2 {
			t.Errorf("pending entry %s: consumer %s, %d deliveries; want alive, at least 2", p.ID, p.Consumer, p.RetryCount)
		}
	}
	for _, m := range got {
		m.Ack()
	}
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
	if s := sub.Stats(); s.Claimed != uint64(len(ids)) || s.Acked != uint64(len(ids)) {
		t.Errorf("Stats = %+v, want %d claimed and acked", s, len(ids))
	}
}

func TestSubscriberPoisonsEntryPastMaxDeliveries(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "poison")
	const payload = `{"sensor":"temperature","value":21.5,"timestamp":"2024-12-01T12:00:00Z"}`
	id := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload}}).Val()

	sub, ch := subscribe(t, stream, redis.Config{MaxDeliveries: 3})
	for range 3 {
		m := mustReceive(t, ch)
		if got := m.Metadata.Get(sensorhub.MetadataEntryID); got != id {
			t.Fatalf("delivered entry %s, want %s", got, id)
		}
		m.Nack()
	}
	poison := waitForPoison(t, client, stream)
	expectNone(t, ch, 200*time.Millisecond)
	want := map[string]string{
		"payload":                 payload,
		sensorhub.MetadataReason:  redis.ReasonRedeliveryLimit,
		sensorhub.MetadataEntryID: id,
		sensorhub.MetadataError:   "redelivery_limit: delivered 3 times, limit 3",
	}
	for k, v := range want {
		if poison.Values[k] != v {
			t.Errorf("poison entry %s = %q, want %q", k, poison.Values[k], v)
		}
	}
	if at, _ := poison.Values[sensorhub.MetadataPoisonedAt].(string); at == "" {
		t.Errorf("poison entry has no %s: %v", sensorhub.MetadataPoisonedAt, poison.Values)
	} else if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
		t.Errorf("poison entry %s: %v", sensorhub.MetadataPoisonedAt, err)
	}
	// Poisoning acks the entry.
	if n := pendingCount(t, client, stream); n != 0 {
		t.Errorf("%d entries pending after poisoning, want 0", n)
	}
	if s := sub.Stats(); s.Delivered != 3 || s.Nacked != 3 || s.Poisoned != 1 {
		t.Errorf("Stats = %+v, want 3 delivered, 3 nacked, 1 poisoned", s)
	}
}

func TestSubscriberNackDelayDoubles(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "nackdelay")
	addEntries(t, client, stream, 1, "x")
	const delay, maxDelay = 100 * time.Millisecond, 400 * time.Millisecond

	_, ch := subscribe(t, stream, redis.Config{NackDelay: delay, MaxNackDelay: maxDelay, MaxDeliveries: 100})
	var at []time.Time
	for range 5 {
		m := mustReceive(t, ch)
		at = append(at, time.Now())
		m.Nack()
	}
	gaps := make([]time.Duration, len(at)-1)
	for i := range gaps {
		gaps[i] = at[i+1].Sub(at[i])
	}
	t.Logf("gaps between deliveries: %v", gaps)
	for i, least := range []time.Duration{delay, 2 * delay, maxDelay, maxDelay} {
		if gaps[i] < least {
			t.Errorf("redelivery %d came %s after the nack before it, want at least %s", i+1, gaps[i], least)
		}
	}
	// Upper bounds, loose enough for a loaded machine: the first pause is
	// not already at the cap, and the last stays at MaxNackDelay.
	if gaps[0] >= maxDelay {
		t.Errorf("first redelivery after %s, want about %s", gaps[0], delay)
	}
	if gaps[3] >= 2*maxDelay {
		t.Errorf("fourth redelivery after %s, want it capped near %s", gaps[3], maxDelay)
	}
}

func TestSubscriberBoundsMessagesInFlight(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "inflight")
	const maxInFlight, total = 10, 100
	ids := addEntries(t, client, stream, total, "x")

	sub, ch := subscribe(t, stream, redis.Config{MaxInFlight: maxInFlight})
	seen := make(map[string]bool)
	for round := 0; len(seen) < total; round++ {
		var held []*message.Message
		for len(held) < maxInFlight && len(seen) < total {
			m := mustReceive(t, ch)
			seen[m.Metadata.Get(sensorhub.MetadataEntryID)] = true
			held = append(held, m)
		}
		if len(held) == maxInFlight {
			wait := 50 * time.Millisecond
			if round == 0 {
				wait = 500 * time.Millisecond
			}
			expectNone(t, ch, wait) // an 11th while 10 are unacked is one too many
		}
		if n := pendingCount(t, client, stream); n > maxInFlight {
			t.Fatalf("%d entries read from Redis and unacked, want at most %d", n, maxInFlight)
		}
		for _, m := range held {
			m.Ack()
		}
	}
	if !sameSet(slices.Collect(maps.Keys(seen)), ids) {
		t.Fatalf("delivered %d distinct entries, want the %d added", len(seen), total)
	}
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
	if s := sub.Stats(); s.Delivered != total || s.Acked != total {
		t.Errorf("Stats = %+v, want %d delivered and acked", s, total)
	}
}

func TestSubscriberBatchesAcks(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "acks")
	const n = 1000
	addEntries(t, client, stream, n, "x")

	subClient := redistest.Client(t)
	var xacks atomic.Int64
	subClient.AddHook(countCommand{name: "xack", n: &xacks})
	sub, ch := subscribe(t, stream, redis.Config{Client: subClient})
	msgs := make([]*message.Message, 0, n)
	for range n {
		msgs = append(msgs, mustReceive(t, ch))
	}
	for _, m := range msgs {
		m.Ack()
	}
	poll.Until(t, 10*time.Second, fmt.Sprintf("Stats().Acked == %d", n), func() bool { return sub.Stats().Acked == n })
	if p := pendingCount(t, client, stream); p != 0 {
		t.Errorf("%d entries pending after %d acks", p, n)
	}
	t.Logf("%d acks in %d XACK commands", n, xacks.Load())
	if x := xacks.Load(); x == 0 || x > n/10 {
		t.Errorf("%d acks took %d XACK commands, want at most %d", n, x, n/10)
	}
}

func TestSubscriberRecreatesDeletedGroup(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "nogroup")
	ctx := t.Context()
	sub, ch := subscribe(t, stream, redis.Config{})
	addEntries(t, client, stream, 1, "before")
	mustReceive(t, ch).Ack()
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })

	// The stream goes, with its group, and comes back without it.
	if err := client.Del(ctx, stream).Err(); err != nil {
		t.Fatal(err)
	}
	ids := addEntries(t, client, stream, 3, "after")
	var got []*message.Message
	for range ids {
		m := mustReceive(t, ch)
		m.Ack()
		got = append(got, m)
	}
	if gotIDs := entryIDs(got); !sameSet(gotIDs, ids) {
		t.Fatalf("delivered %v after the group was lost, want %v", gotIDs, ids)
	}
	if s := sub.Stats(); s.GroupsRecreated < 1 {
		t.Errorf("Stats().GroupsRecreated = %d, want at least 1", s.GroupsRecreated)
	}
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
}

func TestSubscriberBacksOffOnReadErrors(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("fault test with its own redis-server; skipped under -short")
	}
	srv := startRedisServer(t)
	client := goredis.NewClient(srv.Options())
	t.Cleanup(func() { _ = client.Close() })
	const stream = "backoff"
	// A client that fails at once, so that only the subscriber's backoff
	// paces the reads (go-redis alone retries for about 2s per command).
	opts := srv.Options()
	opts.MaxRetries, opts.DialerRetries = -1, 1
	sub, ch := subscribe(t, stream, redis.Config{Options: opts})
	addEntries(t, client, stream, 1, "before")
	mustReceive(t, ch).Ack()
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	before := sub.Stats().ReadErrors
	time.Sleep(3 * time.Second)
	errs := sub.Stats().ReadErrors - before
	t.Logf("%d read errors in 3s with Redis down", errs)
	if errs < 2 || errs >= 30 {
		t.Errorf("%d read errors in 3s with Redis down, want retries but fewer than 30 (a backoff, no hot loop)", errs)
	}

	// Back up (the same data: AOF), it reads on.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	id := addEntries(t, client, stream, 1, "after")[0]
	m := mustReceive(t, ch)
	m.Ack()
	if got := m.Metadata.Get(sensorhub.MetadataEntryID); got != id {
		t.Errorf("delivered %s after the restart, want %s", got, id)
	}
}

func TestSubscriberCloseWaitsForAcks(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "closewait")
	addEntries(t, client, stream, 1, "x")
	sub, ch := subscribe(t, stream, redis.Config{CloseTimeout: 10 * time.Second})
	m := mustReceive(t, ch)

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a message in hand", err)
	default:
	}
	if err := m.Context().Err(); err != nil {
		t.Errorf("message context ended while Close waits for its ack: %v", err)
	}
	m.Ack()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits 5s after the ack")
	}
	t.Logf("Close took %s", time.Since(start))
	if n := pendingCount(t, client, stream); n != 0 {
		t.Errorf("%d entries pending after Close, want the acked one acked", n)
	}
	if s := sub.Stats(); s.Acked != 1 {
		t.Errorf("Stats().Acked = %d, want 1", s.Acked)
	}
	if _, err := sub.Subscribe(t.Context(), stream); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
}

func TestSubscriberCloseGivesUpAfterCloseTimeout(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "closetimeout")
	addEntries(t, client, stream, 1, "x")
	const closeTimeout = 300 * time.Millisecond
	sub, ch := subscribe(t, stream, redis.Config{CloseTimeout: closeTimeout})
	m := mustReceive(t, ch)

	start := time.Now()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Close took %s", took)
	if took < closeTimeout || took > closeTimeout+3*time.Second {
		t.Errorf("Close took %s, want CloseTimeout %s and little more", took, closeTimeout)
	}
	select {
	case <-m.Context().Done():
	default:
		t.Error("the unacked message's context did not end with Close")
	}
	if _, open := <-ch; open {
		t.Error("message channel open after Close")
	}
	m.Ack() // too late: the entry stays pending for the next run
	time.Sleep(100 * time.Millisecond)
	if n := pendingCount(t, client, stream); n != 1 {
		t.Errorf("%d entries pending after Close gave up, want 1", n)
	}
}

func TestSubscriberClosesChannelOnContextCancel(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "cancel")
	ctx, cancel := context.WithCancel(t.Context())
	sub := newTestSubscriber(t, redis.Config{})
	ch, err := sub.Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	addEntries(t, client, stream, 1, "x")
	mustReceive(t, ch).Ack()

	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, open := <-ch:
			if !open {
				return
			}
			m.Nack()
		case <-deadline:
			t.Fatal("message channel still open 5s after its context was cancelled")
		}
	}
}

func TestSubscriberEndsMessageContextWithAckOrNack(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "msgctx")
	addEntries(t, client, stream, 1, "x")
	_, ch := subscribe(t, stream, redis.Config{})

	m := mustReceive(t, ch)
	if err := m.Context().Err(); err != nil {
		t.Fatalf("context of a message in hand ended: %v", err)
	}
	m.Nack()
	waitDone(t, m.Context(), "after Nack")
	m = mustReceive(t, ch)
	if err := m.Context().Err(); err != nil {
		t.Fatalf("context of the redelivered message ended: %v", err)
	}
	m.Ack()
	waitDone(t, m.Context(), "after Ack")
}

// subscribe starts a subscriber of stream for the test, closed when it ends.
// Zero fields of cfg get stream as the transport's Stream (and so
// stream.poison as its poison stream), a client of the test server,
// consumer "test", short timings and a logger into the test's output.
func subscribe(t *testing.T, stream string, cfg redis.Config) (*redis.Subscriber, <-chan *message.Message) {
	t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = stream
	}
	sub := newTestSubscriber(t, cfg)
	ch, err := sub.Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return sub, ch
}

func newTestSubscriber(t *testing.T, cfg redis.Config) *redis.Subscriber {
	t.Helper()
	if cfg.Consumer == "" {
		cfg.Consumer = "test"
	}
	if cfg.BlockTime == 0 {
		cfg.BlockTime = 100 * time.Millisecond
	}
	if cfg.NackDelay == 0 {
		cfg.NackDelay = 10 * time.Millisecond
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return newTransport(t, cfg).Subscriber()
}

// newTransport returns a transport for cfg, closed when the test ends;
// without Client, Options or ClusterOptions it creates clients of the test
// server.
func newTransport(t *testing.T, cfg redis.Config) *redis.Transport {
	t.Helper()
	if cfg.Client == nil && cfg.Options == nil && cfg.ClusterOptions == nil {
		cfg.Options = redistest.Options(t)
	}
	tr, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	return tr
}

// addEntries appends n plain entries with payloads "<prefix>-<i>" and
// returns their ids.
func addEntries(t *testing.T, client goredis.UniversalClient, stream string, n int, prefix string) []string {
	t.Helper()
	cmds, err := client.Pipelined(t.Context(), func(p goredis.Pipeliner) error {
		for i := range n {
			p.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", fmt.Sprintf("%s-%d", prefix, i)}})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("XADD: %v", err)
	}
	ids := make([]string, n)
	for i, c := range cmds {
		ids[i] = c.(*goredis.StringCmd).Val()
	}
	return ids
}

func mustReceive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, open := <-ch:
		if !open {
			t.Fatal("message channel closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

func expectNone(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case m, open := <-ch:
		if open {
			t.Fatalf("unexpected delivery of entry %s", m.Metadata.Get(sensorhub.MetadataEntryID))
		}
	case <-time.After(d):
	}
}

func waitDone(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatalf("message context not done 2s %s", when)
	}
}

// pendingCount is the length of the default group's pending list.
func pendingCount(t *testing.T, client goredis.UniversalClient, stream string) int64 {
	t.Helper()
	p, err := client.XPending(t.Context(), stream, redis.DefaultGroup).Result()
	if err != nil {
		t.Fatalf("XPENDING %s: %v", stream, err)
	}
	return p.Count
}

// waitForPoison waits 5 s for the one entry of the stream's poison stream.
func waitForPoison(t *testing.T, client goredis.UniversalClient, stream string) goredis.XMessage {
	t.Helper()
	return waitForPoisonWithin(t, client, stream, 5*time.Second)
}

func entryIDs(msgs []*message.Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Metadata.Get(sensorhub.MetadataEntryID)
	}
	return ids
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}

// countCommand is a go-redis hook counting the commands called name, alone
// or in pipelines.
type countCommand struct {
	name string
	n    *atomic.Int64
}

func (h countCommand) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h countCommand) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if cmd.Name() == h.name {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h countCommand) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == h.name {
				h.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

func TestSubscriberKeepsEntriesInHandFromOtherConsumers(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "keepalive")
	ids := addEntries(t, client, stream, 1, "slow")

	const maxIdle = 300 * time.Millisecond
	cfg := redis.Config{MaxIdleTime: maxIdle, ClaimInterval: 50 * time.Millisecond}
	cfg.Consumer = "busy"
	_, busy := subscribe(t, stream, cfg)
	m := mustReceive(t, busy)
	cfg.Consumer = "idle"
	_, idle := subscribe(t, stream, cfg)

	// Held well past MaxIdleTime: the busy consumer keeps it alive, so the
	// idle one never claims it and Redis counts a single delivery.
	expectNone(t, idle, 4*maxIdle)
	p, err := client.XPendingExt(t.Context(), &goredis.XPendingExtArgs{
		Stream: stream, Group: redis.DefaultGroup, Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil || len(p) != 1 {
		t.Fatalf("XPENDING = %v, %v", p, err)
	}
	if p[0].ID != ids[0] || p[0].Consumer != "busy" || p[0].RetryCount != 1 {
		t.Errorf("pending entry = %+v, want %s with busy, delivered once", p[0], ids[0])
	}
	m.Ack()
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
}

func TestSubscriberPacesReadsAtASteadyRate(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "pace")
	var reads atomic.Int64
	c := redistest.Client(t)
	c.AddHook(countCommand{name: "xreadgroup", n: &reads})
	sub := newTransport(t, redis.Config{Client: c, Consumer: "pace", ReadPace: 50 * time.Millisecond, BlockTime: 100 * time.Millisecond}).Subscriber()
	ch, err := sub.Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	// 100 entries, one every 2 ms: unpaced, about one read each.
	go func() {
		for i := range 100 {
			client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", fmt.Sprint(i)}})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for range 100 {
		mustReceive(t, ch).Ack()
	}
	if n := reads.Load(); n > 20 {
		t.Errorf("%d reads for 100 entries arriving over 200 ms, want them gathered by the 50 ms pace", n)
	}
}
