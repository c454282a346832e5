package redis_test

import (
	"fmt"
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

// crashAfterPoisonXAdd leaves an entry of stream as a consumer that
// crashed between the XADD of its poison record and the XACK leaves it:
// pending with consumer "crashed", and its record in the poison stream. It
// returns the entry's id and the record's.
func crashAfterPoisonXAdd(t *testing.T, client goredis.UniversalClient, tr *redis.Transport, stream string) (entry, record string) {
	t.Helper()
	ctx := t.Context()
	entry = client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "not json"}}).Val()
	if err := client.XGroupCreateMkStream(ctx, stream, redis.DefaultGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: redis.DefaultGroup, Consumer: "crashed", Streams: []string{stream, ">"}, Count: 1,
	}).Err(); err != nil {
		t.Fatal(err)
	}
	record = client.XAdd(ctx, &goredis.XAddArgs{Stream: tr.PoisonStream(), Values: []any{
		"payload", "not json", sensorhub.MetadataReason, sensorhub.ReasonInvalidJSON,
		sensorhub.MetadataError, "invalid_json", sensorhub.MetadataEntryID, entry,
	}}).Val()
	return entry, record
}

// poisonRecordIDs returns the ids of the poison stream's records of entry.
func poisonRecordIDs(t *testing.T, client goredis.UniversalClient, poison, entry string) []string {
	t.Helper()
	all, err := client.XRange(t.Context(), poison, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range all {
		if m.Values[sensorhub.MetadataEntryID] == entry {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// TestRedeliveryLimitAfterCrashPoisonsOnce: a consumer crashed between the
// poison XADD and the XACK; the consumer that claims the entry, whose
// handler failures are at the limit, acks it and leaves the one record
// there is.
func TestRedeliveryLimitAfterCrashPoisonsOnce(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "crash_limit")
	tr := newTransport(t, redis.Config{Client: client, Stream: stream, Consumer: "heir", MaxDeliveries: 1,
		MaxIdleTime: 100 * time.Millisecond, ClaimInterval: 30 * time.Millisecond,
		BlockTime: 100 * time.Millisecond, CloseTimeout: time.Second, Logger: testLogger(t)})
	entry, record := crashAfterPoisonXAdd(t, client, tr, stream)
	// The crashed consumer poisoned the entry for its handler failures, which
	// had reached the limit (the hash of the package doc).
	if err := client.HSet(t.Context(), stream+":nacks", entry, 1).Err(); err != nil {
		t.Fatal(err)
	}
	ch, err := tr.Subscriber().Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the claimed entry acked", func() bool { return pendingCount(t, client, stream) == 0 })
	expectNone(t, ch, 200*time.Millisecond)
	if ids := poisonRecordIDs(t, client, tr.PoisonStream(), entry); len(ids) != 1 || ids[0] != record {
		t.Errorf("poison records of %s: %v, want the crashed consumer's %s alone", entry, ids, record)
	}
	if n := tr.Subscriber().Stats().Poisoned; n != 0 {
		t.Errorf("Stats.Poisoned = %d, want 0: the entry was poisoned before", n)
	}
}

// TestPoisonPublisherAfterCrashPoisonsOnce: the hub's path. A consumer
// crashed between the poison XADD and the XACK; the consumer that gets the
// entry next poisons it again through the poison publisher, which leaves
// the one record there is.
func TestPoisonPublisherAfterCrashPoisonsOnce(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "crash_pub")
	tr := newTransport(t, redis.Config{Client: client, Stream: stream})
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
}

// TestReplicasRacingToPoisonWriteOneRecord: two replicas poison the same
// entries at the same moment, as two consumers that both hold an entry
// (one claimed it from the other, which was only slow) do; each entry ends
// up with one record.
func TestReplicasRacingToPoisonWriteOneRecord(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "race_pub")
	replicas := []*redis.Transport{
		newTransport(t, redis.Config{Stream: stream, Consumer: "a"}),
		newTransport(t, redis.Config{Stream: stream, Consumer: "b"}),
	}
	const entries = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
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
		t.Errorf("%d poison records of %d entries, want one each of %d: %v", len(all), len(seen), entries, seen)
	}
}

// TestSlowConsumerDoesNotPoisonAClaimedEntryAgain: consumer a holds an
// entry past MaxIdleTime whose handler failures already reached the limit,
// b claims it and poisons it; when a then nacks it past the limit too, a
// finds it no longer pending and writes nothing.
func TestSlowConsumerDoesNotPoisonAClaimedEntryAgain(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "race_sub")
	cfg := func(consumer string, idle, claim time.Duration) redis.Config {
		return redis.Config{Client: client, Stream: stream, Consumer: consumer, MaxDeliveries: 1,
			MaxIdleTime: idle, ClaimInterval: claim, NackDelay: 10 * time.Millisecond,
			BlockTime: 100 * time.Millisecond, CloseTimeout: time.Second, Logger: testLogger(t)}
	}
	// a neither claims nor keeps its entries alive during the test.
	slow := newTransport(t, cfg("a", 3*time.Hour, time.Hour))
	entry := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "x"}}).Val()
	chA, err := slow.Subscriber().Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	held := mustReceive(t, chA)
	// The entry's handler failures are at the limit already (the hash the
	// subscriber counts them in, documented in the package doc).
	if err := client.HSet(t.Context(), stream+":nacks", entry, 1).Err(); err != nil {
		t.Fatal(err)
	}
	claimer := newTransport(t, cfg("b", 100*time.Millisecond, 30*time.Millisecond))
	if _, err := claimer.Subscriber().Subscribe(t.Context(), stream); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "b poisons the claimed entry", func() bool { return claimer.Subscriber().Stats().Poisoned == 1 })
	held.Nack()
	time.Sleep(500 * time.Millisecond) // a's redelivery past the limit
	if ids := poisonRecordIDs(t, client, slow.PoisonStream(), entry); len(ids) != 1 {
		t.Errorf("poison records of %s: %v, want one", entry, ids)
	}
	if n := slow.Subscriber().Stats().Poisoned; n != 0 {
		t.Errorf("a poisoned %d entries, want 0", n)
	}
}

// TestPoisonPublisherPoisonsAFutureEntryOnce: an entry whose producer chose
// an id ahead of the clock has its records looked for in the whole poison
// stream, and is poisoned once however often it is published.
func TestPoisonPublisherPoisonsAFutureEntryOnce(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	tr := newTransport(t, redis.Config{Client: client, Stream: redistest.Name(t, "future")})
	const entry = "99999999999999-0"
	for range 2 {
		msg := message.NewMessage(entry, []byte("not json"))
		msg.Metadata.Set(sensorhub.MetadataEntryID, entry)
		if err := tr.PoisonPublisher().Publish(tr.PoisonStream(), msg); err != nil {
			t.Fatal(err)
		}
	}
	if ids := poisonRecordIDs(t, client, tr.PoisonStream(), entry); len(ids) != 1 {
		t.Errorf("poison records of %s: %v, want one", entry, ids)
	}
}
