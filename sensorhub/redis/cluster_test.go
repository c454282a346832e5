package redis_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/testserver"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// TestCluster runs the transport's main paths against a Redis Cluster of
// three masters, each with a replica, that the test starts: delivery and
// acks, redelivery after nacks, poisoning exactly once, claiming from a
// dead consumer, and the refusal of names that do not share a hash slot.
// Each subtest's stream has a hash tag of its own, so the streams spread
// over the masters. Then it kills the master of a stream's slot while
// entries arrive, and the subscriber goes on with the promoted replica.
func TestCluster(t *testing.T) {
	t.Parallel()
	cluster := testserver.StartRedisCluster(t, 3, 1)
	opts := cluster.Options()
	opts.ClusterStateReloadInterval = redis.DefaultClusterReloadInterval
	client := goredis.NewClusterClient(opts)
	t.Cleanup(func() { _ = client.Close() })

	// The subtests run one after the other: each takes well under a
	// second, and parallel ones would wait for the package's other tests
	// (go test runs GOMAXPROCS at a time) with the cluster idle.
	t.Run("RefusesNamesInDifferentSlots", func(t *testing.T) { testClusterRefusesNamesInDifferentSlots(t, cluster, client) })
	t.Run("SlotAgreesWithRedis", func(t *testing.T) { testClusterSlotAgreesWithRedis(t, client) })
	t.Run("DeliversAndAcks", func(t *testing.T) { testClusterDeliversAndAcks(t, cluster, client) })
	t.Run("RedeliversNacked", func(t *testing.T) { testClusterRedeliversNacked(t, cluster, client) })
	t.Run("PoisonsOnce", func(t *testing.T) { testClusterPoisonsOnce(t, cluster, client) })
	t.Run("ClaimsFromDeadConsumer", func(t *testing.T) { testClusterClaimsFromDeadConsumer(t, cluster, client) })
	t.Run("SlotMigration", func(t *testing.T) { testClusterSlotMigration(t, cluster, client) })
	// Last: it kills a master.
	t.Run("MasterFailover", func(t *testing.T) { testClusterMasterFailover(t, cluster, client) })
}

// clusterStream returns a stream name with a hash tag unique to the test.
func clusterStream(prefix string) string {
	return "{" + prefix + "_" + strings.ToLower(rand.Text()[:10]) + "}stream"
}

// clusterTransport returns a transport of stream on the cluster, with
// clients of its own, closed when the test ends.
func clusterTransport(t *testing.T, cluster *testserver.RedisCluster, cfg redis.Config) *redis.Transport {
	t.Helper()
	cfg.ClusterOptions = cluster.Options()
	if cfg.Consumer == "" {
		cfg.Consumer = "test"
	}
	cfg.BlockTime = 100 * time.Millisecond
	if cfg.NackDelay == 0 {
		cfg.NackDelay = 10 * time.Millisecond
	}
	cfg.CloseTimeout = time.Second
	cfg.Logger = testLogger(t)
	return newTransport(t, cfg)
}

func testClusterRefusesNamesInDifferentSlots(t *testing.T, cluster *testserver.RedisCluster, client *goredis.ClusterClient) {
	for _, c := range []struct {
		name string
		cfg  redis.Config
	}{
		{"default names, cluster options", redis.Config{ClusterOptions: cluster.Options()}},
		{"default names, cluster client", redis.Config{Client: client}},
		{"poison stream without the tag", redis.Config{Client: client, Stream: "{sensor}stream", PoisonStream: "sensor.poison"}},
		{"poison stream with another tag", redis.Config{Client: client, Stream: "{sensor}stream", PoisonStream: "{other}stream.poison"}},
	} {
		_, err := redis.New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), "must share a hash slot") || !strings.Contains(err.Error(), "{sensor}stream") {
			t.Errorf("%s: New() = %v, want an error that the names must share a hash slot, naming the hash-tagged example", c.name, err)
		}
	}
	for _, cfg := range []redis.Config{
		{Client: client, Stream: "{sensor}stream"},
		{Client: client, Stream: "{sensor}stream", PoisonStream: "{sensor}poison"},
		{ClusterOptions: cluster.Options(), Stream: "sensor{7}stream"},
	} {
		tr, err := redis.New(cfg)
		if err != nil {
			t.Errorf("New(Stream %q, PoisonStream %q) = %v, want a transport: the names share a slot", cfg.Stream, cfg.PoisonStream, err)
			continue
		}
		_ = tr.Close()
	}
}

// testClusterSlotAgreesWithRedis checks the names the transport accepts
// and refuses against CLUSTER KEYSLOT: accepted ones share the stream's
// slot in Redis's own reckoning.
func testClusterSlotAgreesWithRedis(t *testing.T, client *goredis.ClusterClient) {
	for _, c := range []struct {
		stream, poison string
		same           bool
	}{
		{"{sensor}stream", "{sensor}stream.poison", true},
		{"sensor_stream", "sensor_stream.poison", false},
		{"a{b}c", "x{b}y", true},
		{"{}stream", "{}stream.poison", false}, // an empty tag is no tag
		{"{a}{b}", "{a}", true},                // the first tag counts
		{"x{{y}}", "x{{y}.poison", true},       // the tag is "{y": from the first {
	} {
		_, err := redis.New(redis.Config{Client: client, Stream: c.stream, PoisonStream: c.poison})
		accepted := err == nil
		slots := map[int64]bool{}
		for _, key := range []string{c.stream, c.stream + ":nacks", c.poison} {
			s, err := client.ClusterKeySlot(t.Context(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[s] = true
		}
		if inRedis := len(slots) == 1; accepted != inRedis || accepted != c.same {
			t.Errorf("stream %q, poison %q: accepted %v, one slot in Redis %v, want %v", c.stream, c.poison, accepted, inRedis, c.same)
		}
	}
}

func testClusterDeliversAndAcks(t *testing.T, cluster *testserver.RedisCluster, client *goredis.ClusterClient) {
	stream := clusterStream("deliver")
	ids := addEntries(t, client, stream, 200, "x")
	tr := clusterTransport(t, cluster, redis.Config{Stream: stream})
	ch, err := tr.Subscriber().Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	var got []*message.Message
	for range ids {
		m := mustReceive(t, ch)
		m.Ack()
		got = append(got, m)
	}
	if gotIDs := entryIDs(got); !sameSet(gotIDs, ids) {
		t.Fatalf("delivered %d entries, want the %d added", len(gotIDs), len(ids))
	}
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
	expectNone(t, ch, 200*time.Millisecond)
}

func testClusterRedeliversNacked(t *testing.T, cluster *testserver.RedisCluster, client *goredis.ClusterClient) {
	stream := clusterStream("nack")
	ids := addEntries(t, client, stream, 1, "x")
	tr := clusterTransport(t, cluster, redis.Config{Stream: stream})
	ch, err := tr.Subscriber().Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		mustReceive(t, ch).Nack()
	}
	m := mustReceive(t, ch)
	if got := m.Metadata.Get(sensorhub.MetadataEntryID); got != ids[0] {
		t.Fatalf("redelivered %s, want %s", got, ids[0])
	}
	// The nack count lives in the hash beside the stream, in its slot.
	if n, err := client.HGet(t.Context(), stream+":nacks", ids[0]).Int(); err != nil || n != 2 {
		t.Errorf("nack count %d (%v), want 2", n, err)
	}
	m.Ack()
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
	poll.Until(t, 5*time.Second, "nack count deleted", func() bool { return client.Exists(t.Context(), stream+":nacks").Val() == 0 })
}

func testClusterPoisonsOnce(t *testing.T, cluster *testserver.RedisCluster, client *goredis.ClusterClient) {
	t.Run("RedeliveryLimit", func(t *testing.T) {
		stream := clusterStream("limit")
		ids := addEntries(t, client, stream, 1, "x")
		tr := clusterTransport(t, cluster, redis.Config{Stream: stream, MaxDeliveries: 2})
		ch, err := tr.Subscriber().Subscribe(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			mustReceive(t, ch).Nack()
		}
		poison := waitForPoisonWithin(t, client, stream, 10*time.Second)
		if poison.Values[sensorhub.MetadataEntryID] != ids[0] || poison.Values[sensorhub.MetadataReason] != redis.ReasonRedeliveryLimit {
			t.Errorf("poison record %v, want entry %s with reason %s", poison.Values, ids[0], redis.ReasonRedeliveryLimit)
		}
		poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
	})
	t.Run("AfterCrash", func(t *testing.T) {
		stream := clusterStream("crash")
		tr := clusterTransport(t, cluster, redis.Config{Stream: stream})
		entry, record := crashAfterPoisonXAdd(t, client, tr, stream)
		msg := message.NewMessage(entry, []byte("not json"))
		msg.Metadata.Set(sensorhub.MetadataEntryID, entry)
		msg.Metadata.Set(sensorhub.MetadataReason, sensorhub.ReasonInvalidJSON)
		if err := tr.PoisonPublisher().Publish(tr.PoisonStream(), msg); err != nil {
			t.Fatal(err)
		}
		if ids := poisonRecordIDs(t, client, tr.PoisonStream(), entry); len(ids) != 1 || ids[0] != record {
			t.Errorf("poison records of %s: %v, want the crashed consumer's %s alone", entry, ids, record)
		}
	})
	t.Run("ReplicasRacing", func(t *testing.T) {
		stream := clusterStream("race")
		replicas := []*redis.Transport{
			clusterTransport(t, cluster, redis.Config{Stream: stream, Consumer: "a"}),
			clusterTransport(t, cluster, redis.Config{Stream: stream, Consumer: "b"}),
		}
		const entries = 30
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, r := range replicas {
			wg.Go(func() {
				<-start
				for i := range entries {
					id := fmt.Sprintf("1-%d", i)
					msg := message.NewMessage(id, []byte("not json"))
					msg.Metadata.Set(sensorhub.MetadataEntryID, id)
					if err := r.PoisonPublisher().Publish(r.PoisonStream(), msg); err != nil {
						t.Error(err)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		all, err := client.XRange(t.Context(), replicas[0].PoisonStream(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[any]int{}
		for _, m := range all {
			seen[m.Values[sensorhub.MetadataEntryID]]++
		}
		if len(all) != entries || len(seen) != entries {
			t.Errorf("%d poison records of %d entries, want one each of %d", len(all), len(seen), entries)
		}
	})
}

func testClusterClaimsFromDeadConsumer(t *testing.T, cluster *testserver.RedisCluster, client *goredis.ClusterClient) {
	stream := clusterStream("claim")
	ctx := t.Context()
	if err := client.XGroupCreateMkStream(ctx, stream, redis.DefaultGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	ids := addEntries(t, client, stream, 3, "orphan")
	if err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: redis.DefaultGroup, Consumer: "dead", Streams: []string{stream, ">"}, Count: 10,
	}).Err(); err != nil {
		t.Fatal(err)
	}
	tr := clusterTransport(t, cluster, redis.Config{Stream: stream, Consumer: "alive",
		MaxIdleTime: 300 * time.Millisecond, ClaimInterval: 100 * time.Millisecond})
	ch, err := tr.Subscriber().Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var got []*message.Message
	for range ids {
		m := mustReceive(t, ch)
		m.Ack()
		got = append(got, m)
	}
	if gotIDs := entryIDs(got); !sameSet(gotIDs, ids) {
		t.Fatalf("claimed %v, want %v", gotIDs, ids)
	}
	poll.Until(t, 5*time.Second, "pending list empty", func() bool { return pendingCount(t, client, stream) == 0 })
	if s := tr.Subscriber().Stats(); s.Claimed != uint64(len(ids)) {
		t.Errorf("Stats.Claimed = %d, want %d", s.Claimed, len(ids))
	}
}

// testClusterMasterFailover kills the master of a stream's slot with
// SIGKILL while a producer adds entries and the subscriber acks them. Its
// replica is promoted; the cluster clients find it (a retry on another
// node, MOVED, and the reload of the slot map every
// DefaultClusterReloadInterval).
func testClusterMasterFailover(t *testing.T, cluster *testserver.RedisCluster, client *goredis.ClusterClient) {
	stream := clusterStream("failover")
	tr := clusterTransport(t, cluster, redis.Config{Stream: stream, MaxIdleTime: failoverClaimIdle})
	opts := cluster.Options()
	opts.ClusterStateReloadInterval = redis.DefaultClusterReloadInterval
	producer := goredis.NewClusterClient(opts)
	t.Cleanup(func() { _ = producer.Close() })
	checkSurvivesTopologyChange(t, tr, client, producer, stream, func() {
		master, err := cluster.MasterOf(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if err := master.Kill(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		poll.Until(t, 30*time.Second, "the replica promoted", func() bool {
			m, err := cluster.MasterOf(t.Context(), stream)
			return err == nil && m != master
		})
		t.Logf("master %s killed; its replica took over after %s", master.Addr, time.Since(killed).Round(time.Millisecond))
		if err := cluster.WaitHealthy(t.Context(), 0, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// testClusterSlotMigration moves the hash slot of a stream, its nack hash
// and its poison stream to another master while a producer adds entries and
// the subscriber acks them: while the keys move one by one, the old master
// answers ASK for those already moved, and after the move MOVED; the
// cluster client follows both.
func testClusterSlotMigration(t *testing.T, cluster *testserver.RedisCluster, client *goredis.ClusterClient) {
	stream := clusterStream("migrate")
	tr := clusterTransport(t, cluster, redis.Config{Stream: stream, MaxIdleTime: failoverClaimIdle})
	// Entries for the poison stream and the nack hash, so that the slot
	// holds all three keys when it moves.
	if err := client.HSet(t.Context(), stream+":nacks", "0-1", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: tr.PoisonStream(), Values: []any{"payload", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	// The producer counts the redirections its nodes answer.
	producer := goredis.NewClusterClient(cluster.Options())
	t.Cleanup(func() { _ = producer.Close() })
	var redirects countRedirects
	producer.OnNewNode(func(node *goredis.Client) { node.AddHook(&redirects) })
	checkSurvivesTopologyChange(t, tr, client, producer, stream, func() {
		from, err := cluster.MasterOf(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		var to *testserver.Redis
		for _, key := range []string{"{a}", "{b}", "{c}", "{d}", "{e}", "{f}"} {
			if m, err := cluster.MasterOf(t.Context(), key); err == nil && m != from {
				to = m
				break
			}
		}
		if to == nil {
			t.Fatal("no other master found")
		}
		if err := cluster.MoveSlot(t.Context(), stream, to); err != nil {
			t.Fatal(err)
		}
		if m, err := cluster.MasterOf(t.Context(), stream); err != nil || m != to {
			t.Fatalf("after the move the slot is served by %v (%v), want %s", m, err, to.Addr)
		}
		t.Logf("slot of %s moved from %s to %s", stream, from.Addr, to.Addr)
	})
	for _, key := range []string{stream + ":nacks", tr.PoisonStream()} {
		if n, err := client.Exists(t.Context(), key).Result(); err != nil || n != 1 {
			t.Errorf("%s after the move: exists %d (%v), want 1", key, n, err)
		}
	}
	t.Logf("the producer was redirected %d times with MOVED, %d with ASK", redirects.moved.Load(), redirects.ask.Load())
	if redirects.moved.Load() == 0 {
		t.Error("no MOVED reply: the producer never wrote to the old master after the move, so the test proves nothing")
	}
}

// countRedirects is a go-redis hook, on a cluster client's nodes, counting
// the MOVED and ASK replies they receive.
type countRedirects struct{ moved, ask atomic.Int64 }

func (h *countRedirects) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *countRedirects) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil {
			switch {
			case strings.HasPrefix(err.Error(), "MOVED "):
				h.moved.Add(1)
			case strings.HasPrefix(err.Error(), "ASK "):
				h.ask.Add(1)
			}
		}
		return err
	}
}

func (h *countRedirects) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// failoverClaimIdle is the MaxIdleTime of the failover tests: an ack the
// dead master had not passed on to its replica leaves the entry pending
// again, and the subscriber claims it back after this long.
const failoverClaimIdle = 2 * time.Second

// checkSurvivesTopologyChange runs tr's subscriber on stream while producer
// adds entries, runs change (a failover, which kills a master and returns
// once its replica took over, or a slot's move to another master), and
// checks that the transport goes on. Redis replicates asynchronously, so
// entries a dead master acknowledged may be lost with it, and acks too:
// those entries are delivered again. What must hold: every entry the
// stream holds after the change is delivered, nothing stays pending, and
// an entry added after the change arrives. client reads the stream for
// the check.
func checkSurvivesTopologyChange(t *testing.T, tr *redis.Transport, client, producer goredis.UniversalClient, stream string, change func()) {
	t.Helper()
	ch, err := tr.Subscriber().Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	delivered := map[string]bool{}
	go func() {
		for m := range ch {
			mu.Lock()
			delivered[m.Metadata.Get(sensorhub.MetadataEntryID)] = true
			mu.Unlock()
			m.Ack()
		}
	}()
	stop := make(chan struct{})
	var produced sync.WaitGroup
	produced.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			// Errors while the master is down are expected; the check
			// goes by what the stream holds afterwards.
			_ = producer.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", fmt.Sprint(i)}}).Err()
		}
	})
	poll.Until(t, 10*time.Second, "deliveries before the change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) >= 200
	})

	change()
	changed := time.Now()
	var after string
	poll.Until(t, 30*time.Second, "an entry added after the change", func() bool {
		id, err := producer.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "after"}}).Result()
		after = id
		return err == nil
	})
	time.Sleep(500 * time.Millisecond) // the producer adds more
	close(stop)
	produced.Wait()

	// client may still know a dead master: it loads the new topology
	// after a failed command, so the check's reads are retried too.
	var entries []goredis.XMessage
	poll.Until(t, 30*time.Second, "the stream read after the change", func() bool {
		var err error
		entries, err = client.XRange(t.Context(), stream, "-", "+").Result()
		return err == nil
	})
	poll.Until(t, 30*time.Second, "every entry of the stream delivered and acked", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range entries {
			if !delivered[e.ID] {
				return false
			}
		}
		p, err := client.XPending(t.Context(), stream, redis.DefaultGroup).Result()
		return err == nil && p.Count == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if !delivered[after] {
		t.Errorf("entry %s, added after the change, not delivered", after)
	}
	t.Logf("%d entries in the stream, all delivered and acked %s after the change; %d deliveries",
		len(entries), time.Since(changed).Round(time.Millisecond), len(delivered))
}
