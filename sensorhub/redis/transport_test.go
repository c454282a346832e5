package redis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// TestTransportUsesOnePoisonStreamEverywhere sets a poison stream other than
// the default: the subscriber's poison path, the poison publisher and the
// poison queue must all use it, and nothing the default.
func TestTransportUsesOnePoisonStreamEverywhere(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "onepoison")
	poison := stream + ":dead"
	tr := newTransport(t, redis.Config{Stream: stream, PoisonStream: poison, Consumer: "test", MaxDeliveries: 1,
		NackDelay: 10 * time.Millisecond, BlockTime: 100 * time.Millisecond})
	if got := tr.PoisonStream(); got != poison {
		t.Fatalf("PoisonStream() = %q, want %q", got, poison)
	}

	ch, err := tr.Subscriber().Subscribe(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	entry := addEntries(t, client, stream, 1, "nacked")[0]
	mustReceive(t, ch).Nack()
	poll.Until(t, 10*time.Second, "entry in "+poison, func() bool { return client.XLen(t.Context(), poison).Val() == 1 })

	msg := message.NewMessage("m1", []byte(`{"bad":`))
	msg.Metadata.Set(sensorhub.MetadataReason, "invalid_json")
	msg.Metadata.Set(sensorhub.MetadataError, "unexpected end of JSON input")
	msg.Metadata.Set(sensorhub.MetadataEntryID, "1-1")
	msg.Metadata.Set(sensorhub.MetadataPoisonedAt, "2024-12-01T12:00:00Z")
	if err := tr.PoisonPublisher().Publish(poison, msg); err != nil {
		t.Fatal(err)
	}
	if err := tr.PoisonPublisher().Publish(stream+sensorhub.PoisonSuffix, msg); err == nil || !strings.Contains(err.Error(), poison) {
		t.Errorf("publishing to another poison stream: err = %v, want one naming %q", err, poison)
	}

	records, err := tr.PoisonQueue().List(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("poison queue lists %d records, want 2: %+v", len(records), records)
	}
	if r := records[0]; string(r.Payload) != "nacked-0" || r.Reason != redis.ReasonRedeliveryLimit || r.EntryID != entry || r.PoisonedAt.IsZero() {
		t.Errorf("redelivery-limit record = %+v", r)
	}
	want := redis.PoisonRecord{ID: records[1].ID, Payload: []byte(`{"bad":`), Reason: "invalid_json", Error: "unexpected end of JSON input",
		EntryID: "1-1", PoisonedAt: time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)}
	if r := records[1]; string(r.Payload) != string(want.Payload) || r.Reason != want.Reason || r.Error != want.Error ||
		r.EntryID != want.EntryID || !r.PoisonedAt.Equal(want.PoisonedAt) {
		t.Errorf("published record = %+v, want %+v", r, want)
	}
	if n := client.Exists(t.Context(), stream+sensorhub.PoisonSuffix).Val(); n != 0 {
		t.Errorf("the default poison stream %s exists beside %s", stream+sensorhub.PoisonSuffix, poison)
	}
}

// TestTransportLeavesCallersClientOpen: Close closes what the transport
// created, never a client passed in.
func TestTransportLeavesCallersClientOpen(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	tr, err := redis.New(redis.Config{Client: client, Stream: redistest.Name(t, "owned"), Consumer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Errorf("the caller's client after Close: %v", err)
	}
}
