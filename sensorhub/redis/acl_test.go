package redis_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/docacl"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// aclOptions creates an ACL user of the test server with the docs' rights on
// stream and events, deleted when the test ends, and returns options that
// connect as it.
func aclOptions(t *testing.T, stream, events string) *goredis.Options {
	t.Helper()
	admin := redistest.Client(t)
	user := strings.ReplaceAll(redistest.Name(t, "acl"), "_", "-")
	password := watermill.NewUUID()
	rules, err := docacl.Rules("sensorhub", stream, events)
	if err != nil {
		t.Fatal(err)
	}
	args := []any{"ACL", "SETUSER", user, "reset", "on", ">" + password}
	for _, rule := range rules {
		args = append(args, rule)
	}
	if err := admin.Do(t.Context(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if t.Failed() {
			entries, _ := admin.Do(ctx, "ACL", "LOG", "100").Slice()
			for _, e := range entries {
				if e, ok := e.(map[any]any); ok && e["username"] == user {
					t.Logf("ACL LOG: %v refused on %v (%v)", e["context"], e["object"], e["reason"])
				}
			}
		}
		_ = admin.Do(ctx, "ACL", "DELUSER", user).Err()
	})
	opts := redistest.Options(t)
	opts.Username, opts.Password = user, password
	return opts
}

// TestLeastPrivilegeUserRunsEveryPath runs every Redis path of the service
// as the ACL user the docs give: reading and acking the stream, each
// poison path (the hub's, redelivery_limit, too_large), listing and
// replaying the poison queue, publishing events as the outbox forwarder
// does, and consuming them as an events consumer. None may be refused.
func TestLeastPrivilegeUserRunsEveryPath(t *testing.T) {
	t.Parallel()
	admin := redistest.Client(t)
	stream, events := redistest.Name(t, "acl_stream"), redistest.Name(t, "acl_events")
	opts := aclOptions(t, stream, events)
	ctx := t.Context()
	const limit = 1024
	tr := newTransport(t, redis.Config{
		Options: opts, Stream: stream, Consumer: "acl", MaxDeliveries: 2, MaxFieldBytes: limit,
		BlockTime: 100 * time.Millisecond, NackDelay: 10 * time.Millisecond, CloseTimeout: time.Second,
		Logger: testLogger(t),
	})
	ch, err := tr.Subscriber().Subscribe(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	add := func(values ...any) string {
		t.Helper()
		id, err := admin.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: values}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	// Store: delivered and acked.
	stored := add("payload", `{"sensor":"temperature","value":14,"timestamp":"2024-12-01 12:00:00"}`)
	mustReceive(t, ch).Ack()
	// The hub's poison path: the poison publisher, then the ack.
	invalid := add("payload", "not json")
	// redelivery_limit: nacked until the subscriber poisons it.
	nacked := add("payload", `{"sensor":"temperature","value":15,"timestamp":"2024-12-01 12:00:00"}`)
	// too_large: a payload over the field bound.
	large := add("payload", strings.Repeat("x", limit+1))
	for range 3 {
		m := mustReceive(t, ch)
		switch m.Metadata.Get(sensorhub.MetadataEntryID) {
		case invalid:
			m.Metadata.Set(sensorhub.MetadataReason, sensorhub.ReasonInvalidJSON)
			m.Metadata.Set(sensorhub.MetadataError, "invalid_json: not JSON")
			if err := tr.PoisonPublisher().Publish(tr.PoisonStream(), m); err != nil {
				t.Errorf("poison publisher: %v", err)
			}
			m.Ack()
		case nacked:
			m.Nack()
		default:
			t.Fatalf("unexpected delivery of %s", m.Metadata.Get(sensorhub.MetadataEntryID))
		}
	}
	poll.Until(t, 10*time.Second, "three poison records and nothing pending", func() bool {
		return admin.XLen(ctx, tr.PoisonStream()).Val() == 3 && pendingCount(t, admin, stream) == 0
	})
	records, err := tr.PoisonQueue().List(ctx, "", 10)
	if err != nil {
		t.Fatalf("poison list: %v", err)
	}
	reasons := map[string]string{}
	for _, r := range records {
		reasons[r.EntryID] = r.Reason
	}
	want := map[string]string{invalid: sensorhub.ReasonInvalidJSON, nacked: redis.ReasonRedeliveryLimit, large: sensorhub.ReasonTooLarge}
	for id, reason := range want {
		if reasons[id] != reason {
			t.Errorf("poison record of %s has reason %q, want %q (records %v)", id, reasons[id], reason, reasons)
		}
	}
	if _, ok := reasons[stored]; ok {
		t.Errorf("the stored entry %s was poisoned", stored)
	}
	if n, err := tr.PoisonQueue().Replay(ctx, []string{records[0].ID}); err != nil || n != 1 {
		t.Errorf("poison replay = %d, %v", n, err)
	}
	mustReceive(t, ch).Ack() // the replayed message

	// Events: published as the outbox forwarder does, read as a consumer
	// of the events stream does.
	pub, err := redis.NewPublisher(goredis.NewClient(opts), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	event := message.NewMessage(watermill.NewUUID(), []byte(`{"type":"readings.stored"}`))
	event.Metadata.Set(sensorhub.MetadataEventType, "readings.stored")
	if err := pub.Publish(events, event); err != nil {
		t.Fatalf("publish event: %v", err)
	}
	consumer := newTransport(t, redis.Config{Options: opts, Stream: events, Group: "alerts", Consumer: "alerts",
		BlockTime: 100 * time.Millisecond, CloseTimeout: time.Second, Logger: testLogger(t)})
	evs, err := consumer.Subscriber().Subscribe(ctx, events)
	if err != nil {
		t.Fatalf("subscribe to events: %v", err)
	}
	if got := mustReceive(t, evs); got.UUID != event.UUID {
		t.Errorf("consumed event %s, want %s", got.UUID, event.UUID)
	} else {
		got.Ack()
	}

	if err := tr.Check(ctx); err != nil {
		t.Errorf("Check = %v", err)
	}
	if s := tr.Subscriber().Stats(); len(s.RefusedCommands) != 0 {
		t.Errorf("refused commands: %v", s.RefusedCommands)
	}
}

// TestRefusedCommandIsCountedAndNotRetried gives the subscriber a user
// that may read its stream but not write the poison stream: poisoning is
// refused with NOPERM, which is counted, logged and shown by Check, and
// not retried in a loop.
func TestRefusedCommandIsCountedAndNotRetried(t *testing.T) {
	t.Parallel()
	admin := redistest.Client(t)
	stream := redistest.Name(t, "acl_refused")
	// The events stream's name stands in for the poison stream's.
	opts := aclOptions(t, stream, stream+".elsewhere")
	tr := newTransport(t, redis.Config{
		Options: opts, Stream: stream, PoisonStream: stream + ".forbidden", MaxDeliveries: 1,
		Consumer: "acl", BlockTime: 100 * time.Millisecond, CloseTimeout: time.Second, Logger: testLogger(t),
	})
	ch, err := tr.Subscriber().Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	admin.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "x"}})
	mustReceive(t, ch).Nack()
	poll.Until(t, 10*time.Second, "a refused command", func() bool {
		return tr.Subscriber().Stats().RefusedCommands["NOPERM"] > 0
	})
	err = tr.Check(t.Context())
	if err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("Check = %v, want an error naming NOPERM", err)
	}
	time.Sleep(time.Second)
	if n := tr.Subscriber().Stats().RefusedCommands["NOPERM"]; n != 1 {
		t.Errorf("the refused poisoning was tried %d times in a second, want once", n)
	}
	if n := pendingCount(t, admin, stream); n != 1 {
		t.Errorf("%d entries pending, want the refused one", n)
	}
}

// testLogger logs warnings and errors into the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
