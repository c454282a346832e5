package events_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/events"
)

func TestDedupeForgetsTheOldestFirst(t *testing.T) {
	t.Parallel()
	d := events.NewDedupe(2)
	d.Add("a")
	d.Add("b")
	d.Add("a") // already there: no eviction
	d.Add("c") // evicts a
	if d.Seen("a") || !d.Seen("b") || !d.Seen("c") {
		t.Errorf("seen a=%v b=%v c=%v, want false true true", d.Seen("a"), d.Seen("b"), d.Seen("c"))
	}
}

func TestConsumerDecodesByTypeAndDropsRepeats(t *testing.T) {
	t.Parallel()
	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	c, err := events.NewConsumer(events.Config{Subscriber: pubsub, Stream: "ev"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []float64
	events.On(c, sensorhub.EventReadingsStored, func(_ context.Context, _ sensorhub.Event, p sensorhub.ReadingsStored) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p.Readings[0].Value)
		return nil
	})
	publish := func(v float64) *message.Message {
		e, err := sensorhub.NewReadingsStored([]sensorhub.Reading{{Station: "s", Sensor: "temperature", Time: time.Now(), Value: v, Unit: "Cel"}})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := e[0].Message()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	first, second := publish(1), publish(2)
	other, _ := sensorhub.NewEvent("other.type", 1, 0)
	otherMsg, _ := other.Message()
	for _, m := range []*message.Message{first, first.Copy(), otherMsg, message.NewMessage("x", []byte("junk")), second} {
		if err := pubsub.Publish("ev", m); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	go func() {
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= 2 {
				time.Sleep(50 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got) // gochannel does not keep order
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("handled %v, want [1 2]: the repeat dropped, other types and junk skipped", got)
	}
}
