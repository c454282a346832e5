package redis_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sensorhub/sensorhub/internal/poll"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// TestSubscriberSettlesEachEntryOfABundle reads entries as one bundle and
// settles each by its own message: acked ones are acked in Redis, a nacked
// one and one left unsettled (its handler panicked) come back alone.
func TestSubscriberSettlesEachEntryOfABundle(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "bundle")
	ids := addEntries(t, client, stream, 5, "m")

	sub, ch := subscribe(t, stream, redis.Config{Bundles: true})
	bundle := mustReceive(t, ch)
	msgs, ok := sensorhub.Bundled(bundle)
	if !ok {
		t.Fatalf("delivered %q, want a bundle", bundle.Payload)
	}
	if got := entryIDs(msgs); !slices.Equal(got, ids) {
		t.Fatalf("bundle holds entries %v, want %v in order", got, ids)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("m-%d", i); string(m.Payload) != want {
			t.Errorf("message %d has payload %q, want %q", i, m.Payload, want)
		}
	}
	msgs[0].Ack()
	msgs[1].Nack()
	msgs[2].Ack()
	msgs[4].Ack() // msgs[3] is left unsettled
	bundle.Ack()

	var again []*message.Message
	for range 2 {
		again = append(again, mustReceive(t, ch))
	}
	for _, m := range again {
		if _, ok := sensorhub.Bundled(m); ok {
			t.Errorf("entry %s redelivered in a bundle, want alone", m.Metadata.Get(sensorhub.MetadataEntryID))
		}
		m.Ack()
	}
	if got := entryIDs(again); !sameSet(got, []string{ids[1], ids[3]}) {
		t.Errorf("redelivered %v, want the nacked and the unsettled entry %v", got, []string{ids[1], ids[3]})
	}
	expectNone(t, ch, 100*time.Millisecond)
	poll.Until(t, 10*time.Second, "every entry to be acked", func() bool { return pendingCount(t, client, stream) == 0 })
	if s := sub.Stats(); s.Delivered != 7 || s.Nacked != 2 || s.Acked != 5 {
		t.Errorf("Stats = %+v, want 7 delivered (5 in the bundle, 2 again), 2 nacked, 5 acked", s)
	}
}
