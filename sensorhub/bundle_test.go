package sensorhub_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
)

// chanSubscriber hands the hub the very messages sent on its channel:
// Watermill's GoChannel delivers copies, without the context that makes a
// message a bundle.
type chanSubscriber chan *message.Message

func (c chanSubscriber) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return c, nil
}

// Close ends the subscription, as the router expects of Close; the test
// sends nothing after the hub stopped.
func (c chanSubscriber) Close() error {
	close(c)
	return nil
}

// groupSink is a BatchWriter over sensorhubtest.Sink that counts its
// transactions.
type groupSink struct {
	sensorhubtest.Sink
	mu     sync.Mutex
	groups []int // batches per WriteBatches call
}

func (s *groupSink) WriteBatches(ctx context.Context, batches []sensorhub.Batch) ([]sensorhub.WriteResult, error) {
	s.mu.Lock()
	s.groups = append(s.groups, len(batches))
	s.mu.Unlock()
	out := make([]sensorhub.WriteResult, len(batches))
	for i, b := range batches {
		var err error
		if out[i], err = s.Write(ctx, b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bundleHub starts a hub of types over sink that reads from the returned
// channel and poisons to the returned subscription.
func bundleHub(t *testing.T, sink sensorhub.Sink, cfg sensorhub.Config, types ...sensorhub.SensorType) (*sensorhub.Hub, chanSubscriber, <-chan *message.Message) {
	t.Helper()
	in := make(chanSubscriber)
	poison := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	t.Cleanup(func() { _ = poison.Close() })
	poisoned, err := poison.Subscribe(t.Context(), sensorhub.DefaultStream+sensorhub.PoisonSuffix)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Subscriber, cfg.Publisher, cfg.Sink = in, poison, sink
	cfg.Decoder.Now = clock
	cfg.RetryInterval, cfg.MaxRetryBackoff = time.Millisecond, 5*time.Millisecond
	cfg.Logger = testLogger(t)
	hub, err := sensorhub.New(cfg, types...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := hub.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Stop(ctx)
	})
	return hub, in, poisoned
}

// entry is a message as a transport makes it for one stream entry.
func entry(id, payload string) *message.Message {
	msg := message.NewMessage(id, []byte(payload))
	msg.Metadata.Set(sensorhub.MetadataEntryID, id)
	return msg
}

// settled waits for msg's ack or nack and reports whether it was acked.
func settled(t *testing.T, msg *message.Message) bool {
	t.Helper()
	select {
	case <-msg.Acked():
		return true
	case <-msg.Nacked():
		return false
	case <-time.After(10 * time.Second):
		t.Fatalf("message %s neither acked nor nacked", msg.UUID)
		return false
	}
}

func TestHubHandlesEveryMessageOfABundleOnItsOwn(t *testing.T) {
	t.Parallel()
	sink := &groupSink{}
	failing := sensorhub.SensorType{Name: "flaky", Unit: "1", Min: 0, Max: 10,
		Handle: func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) {
			return sensorhub.Batch{}, errors.New("the handler's own transient failure")
		}}
	hub, in, poisoned := bundleHub(t, sink, sensorhub.Config{MaxRetries: 2}, temperature, humidity, failing)

	good := []*message.Message{
		entry("1-0", `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`),
		entry("1-1", `[{"sensor": "humidity", "value": 50, "timestamp": "2024-12-01T12:00:00Z"}, {"sensor": "temperature", "value": 15, "timestamp": "2024-12-01T12:01:00Z"}]`),
		entry("1-2", `{"sensor": "humidity", "value": 51, "timestamp": "2024-12-01 12:01:00"}`),
	}
	bad := map[string]*message.Message{ // reason → message
		sensorhub.ReasonInvalidJSON:     entry("2-0", `{"sensor": "temperature", "value": 14,`),
		sensorhub.ReasonUnknownSensor:   entry("2-1", `{"sensor": "soil_ph", "value": 6.5, "timestamp": "2024-12-01 12:00:00"}`),
		sensorhub.ReasonValueOutOfRange: entry("2-2", `{"sensor": "humidity", "value": 140, "timestamp": "2024-12-01 12:00:00"}`),
	}
	flaky := entry("3-0", `{"sensor": "flaky", "value": 1, "timestamp": "2024-12-01 12:00:00"}`)
	msgs := append([]*message.Message{flaky}, good...)
	for _, m := range bad {
		msgs = append(msgs, m)
	}
	bundle := sensorhub.NewBundle(t.Context(), "bundle-1", msgs)
	in <- bundle

	if !settled(t, bundle) {
		t.Fatal("the bundle was nacked")
	}
	for _, m := range append(slices.Clone(good), slices.Collect(maps.Values(bad))...) {
		if !settled(t, m) {
			t.Errorf("message %s nacked, want acked (stored or poisoned)", m.UUID)
		}
	}
	if settled(t, flaky) {
		t.Error("the message whose handler kept failing was acked, want nacked after MaxRetries")
	}
	if got := len(sink.Readings()); got != 4 {
		t.Errorf("stored %d readings, want the 4 of the valid messages", got)
	}
	sink.mu.Lock()
	if len(sink.groups) == 0 || sink.groups[0] != len(good) {
		t.Errorf("transactions of %v batches, want the %d valid messages in the first", sink.groups, len(good))
	}
	sink.mu.Unlock()

	for range bad {
		select {
		case p := <-poisoned:
			p.Ack()
			reason := p.Metadata.Get(sensorhub.MetadataReason)
			want, ok := bad[reason]
			if !ok || p.Metadata.Get(sensorhub.MetadataEntryID) != want.UUID || string(p.Payload) != string(want.Payload) {
				t.Errorf("poisoned %s (entry %s, reason %q), want one of the invalid messages with its own reason",
					p.Payload, p.Metadata.Get(sensorhub.MetadataEntryID), reason)
			}
			if p.Metadata.Get(sensorhub.MetadataError) == "" || p.Metadata.Get(sensorhub.MetadataPoisonedAt) == "" {
				t.Errorf("poisoned %s without error or time: %v", p.Payload, p.Metadata)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("timed out waiting for the poisoned messages")
		}
	}
	st := hub.Stats()
	if st.Received != uint64(len(msgs)) || st.Stored != 4 || st.Retried != 2 {
		t.Errorf("Stats = %+v, want %d received, 4 stored, the failing message retried twice", st, len(msgs))
	}
	for reason := range bad {
		if st.Poisoned[reason] != 1 {
			t.Errorf("Stats.Poisoned = %v, want one of each reason", st.Poisoned)
		}
	}
}

func TestHubWaitsOutAnOutageForABundle(t *testing.T) {
	t.Parallel()
	// The sink fails more often than MaxRetries: an outage is retried for
	// as long as it lasts, for every message of the bundle.
	sink := &flakySink{failures: 5}
	_, in, poisoned := bundleHub(t, sink, sensorhub.Config{MaxRetries: 1}, temperature)
	msgs := make([]*message.Message, 3)
	for i := range msgs {
		msgs[i] = entry(fmt.Sprintf("1-%d", i), fmt.Sprintf(`{"sensor": "temperature", "value": %d, "timestamp": "2024-12-01 12:00:00", "station": "s%d"}`, i, i))
	}
	bundle := sensorhub.NewBundle(t.Context(), "bundle-1", msgs)
	in <- bundle
	if !settled(t, bundle) {
		t.Fatal("the bundle was nacked")
	}
	for _, m := range msgs {
		if !settled(t, m) {
			t.Errorf("message %s nacked during an outage, want retried until stored", m.UUID)
		}
	}
	if got := len(sink.Readings()); got != len(msgs) {
		t.Errorf("stored %d readings, want %d", got, len(msgs))
	}
	select {
	case p := <-poisoned:
		t.Errorf("an outage poisoned %s", p.Payload)
	default:
	}
}
