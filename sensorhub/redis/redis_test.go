package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

func newSubscriber(t *testing.T) *redis.Subscriber {
	t.Helper()
	return newTransport(t, redis.Config{
		Consumer:  "test",
		NackDelay: 10 * time.Millisecond,
		BlockTime: 100 * time.Millisecond,
	}).Subscriber()
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg := <-ch:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

func TestSubscriberReadsEveryLayoutWithEntryIDs(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "sub")
	ctx := t.Context()

	plainID := client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", `{"plain":true}`}}).Val()
	foreignID := client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"foo", "bar"}}).Val()
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: goredis.NewClient(redistest.Options(t))}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.Publish(stream, message.NewMessage("wm-uuid", []byte(`{"watermill":true}`))); err != nil {
		t.Fatal(err)
	}

	ch, err := newSubscriber(t).Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	plain := receive(t, ch)
	if string(plain.Payload) != `{"plain":true}` || plain.Metadata.Get(sensorhub.MetadataEntryID) != plainID {
		t.Errorf("plain entry: payload %q entry id %q, want id %s", plain.Payload, plain.Metadata.Get(sensorhub.MetadataEntryID), plainID)
	}
	plain.Ack()
	foreign := receive(t, ch)
	if foreign.Metadata.Get(sensorhub.MetadataInvalidEntry) == "" || foreign.Metadata.Get(sensorhub.MetadataEntryID) != foreignID {
		t.Errorf("foreign entry: metadata %v, want invalid mark and entry id %s", foreign.Metadata, foreignID)
	}
	foreign.Ack()
	wm := receive(t, ch)
	if wm.UUID != "wm-uuid" || string(wm.Payload) != `{"watermill":true}` {
		t.Errorf("watermill entry: uuid %q payload %q", wm.UUID, wm.Payload)
	}
	wm.Ack()

	// Acked entries leave the pending list.
	deadline := time.Now().Add(5 * time.Second)
	for {
		pending, err := client.XPending(ctx, stream, redis.DefaultGroup).Result()
		if err != nil {
			t.Fatal(err)
		}
		if pending.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still pending after acks", pending.Count)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSubscriberRedeliversNackedMessage(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "nack")
	ctx := t.Context()
	id := client.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "x"}}).Val()

	ch, err := newSubscriber(t).Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	first := receive(t, ch)
	first.Nack()
	again := receive(t, ch)
	if again.Metadata.Get(sensorhub.MetadataEntryID) != id {
		t.Fatalf("redelivered entry id %q, want %s", again.Metadata.Get(sensorhub.MetadataEntryID), id)
	}
	again.Ack()
}

func TestPublisherWritesPoisonFieldsFlat(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "poisonpub")
	pub, err := redis.NewPublisher(goredis.NewClient(redistest.Options(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	msg := message.NewMessage(watermill.NewUUID(), []byte("not json"))
	msg.Metadata.Set(sensorhub.MetadataReason, sensorhub.ReasonInvalidJSON)
	msg.Metadata.Set(sensorhub.MetadataError, "invalid_json: payload is not JSON")
	msg.Metadata.Set(sensorhub.MetadataEntryID, "1-0")
	if err := pub.Publish(stream, msg); err != nil {
		t.Fatal(err)
	}
	entries, err := client.XRange(t.Context(), stream, "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("XRANGE: %v, %d entries", err, len(entries))
	}
	v := entries[0].Values
	if v["payload"] != "not json" || v["reason"] != sensorhub.ReasonInvalidJSON || v["entry_id"] != "1-0" || v["error"] == "" {
		t.Errorf("entry fields = %v", v)
	}
}

func TestPoisonQueueListAndReplay(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "pq")
	ctx := t.Context()
	tr := newTransport(t, redis.Config{Client: client, Stream: stream})
	poison := tr.PoisonStream()
	for _, p := range []string{"one", "two", "three"} {
		client.XAdd(ctx, &goredis.XAddArgs{Stream: poison, Values: []any{
			"payload", p, "reason", "invalid_json", "error", "bad " + p, "entry_id", "9-9",
			"poisoned_at", "2024-12-01T12:00:00Z",
		}})
	}
	q := tr.PoisonQueue()
	entries, err := q.List(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || string(entries[0].Payload) != "one" || entries[0].Reason != "invalid_json" ||
		entries[0].EntryID != "9-9" || entries[0].PoisonedAt.IsZero() {
		t.Fatalf("List = %+v", entries)
	}
	rest, err := q.List(ctx, entries[1].ID, 10)
	if err != nil || len(rest) != 1 || string(rest[0].Payload) != "three" {
		t.Fatalf("List after %s = %+v, %v", entries[1].ID, rest, err)
	}

	n, err := q.Replay(ctx, []string{entries[1].ID})
	if err != nil || n != 1 {
		t.Fatalf("Replay one = %d, %v", n, err)
	}
	if _, err := q.Replay(ctx, []string{entries[1].ID}); err == nil {
		t.Fatal("replaying a removed id succeeded")
	}
	n, err = q.Replay(ctx, nil)
	if err != nil || n != 2 {
		t.Fatalf("Replay all = %d, %v", n, err)
	}
	if left, _ := q.Len(ctx); left != 0 {
		t.Errorf("%d entries left in the poison stream", left)
	}
	replayed, err := client.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range replayed {
		got = append(got, m.Values["payload"].(string))
	}
	if len(got) != 3 || got[0] != "two" || got[1] != "one" || got[2] != "three" {
		t.Errorf("stream payloads after replay = %v, want [two one three]", got)
	}
}

func TestBridgeAppendsPublishedMessages(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "bridge")
	channel := stream + "_ch"
	bridge, err := redis.NewBridge(redis.BridgeConfig{Client: client, Channel: channel, Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := bridge.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if err := client.Publish(ctx, channel, `{"seq":`+string(rune('0'+i%10))+`}`).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for client.XLen(ctx, stream).Val() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bridge.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if got := client.XLen(ctx, stream).Val(); got != n {
		t.Fatalf("stream has %d entries, want %d", got, n)
	}
	if s := bridge.Stats(); s.Received != n || s.Appended != n || s.Failed != 0 {
		t.Errorf("Stats = %+v, want %d received and appended", s, n)
	}
	first, _ := client.XRangeN(ctx, stream, "-", "+", 1).Result()
	if first[0].Values["payload"] != `{"seq":0}` {
		t.Errorf("first entry = %v", first[0].Values)
	}
}
