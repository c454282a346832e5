// Package events helps downstream programs consume sensorhub's events
// stream (sensor_events): it decodes each message into a sensorhub.Event,
// drops repeats by UUID within a bounded memory, and calls the handler
// registered for the event's type, with the payload decoded into its Go
// type.
//
//	transport, _ := redis.New(redis.Config{Options: opts, Stream: sensorhub.DefaultEventsStream, Group: "alerts", MaxInFlight: 1})
//	sub := transport.Subscriber()
//	c, _ := events.NewConsumer(events.Config{Subscriber: sub})
//	events.On(c, sensorhub.EventThresholdCrossed, func(ctx context.Context, e sensorhub.Event, p threshold.Crossed) error {
//		fmt.Println(p.Station, p.Sensor, p.Direction)
//		return nil
//	})
//	err := c.Run(ctx)
//
// Delivery is at least once: after a crash of sensorhub or of the consumer
// an event may come again, with its UUID unchanged. The Consumer drops a
// UUID it has handled among the last Config.DedupeSize; a consumer that
// must never act twice also keeps the UUIDs it acted on with its own state.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DefaultDedupeSize is how many UUIDs a Consumer remembers by default.
const DefaultDedupeSize = 10_000

// HandlerFunc handles one event. An error nacks the message, so it comes
// again later; return nil for events that can never be handled.
type HandlerFunc func(ctx context.Context, e sensorhub.Event) error

// Config configures a Consumer. Subscriber is required.
type Config struct {
	// Subscriber delivers the stream's messages, usually a
	// sensorhub/redis Subscriber with a consumer group of the program's
	// own. Give it MaxInFlight 1 when handlers need the stream's order.
	// The Consumer closes it when Run returns.
	Subscriber message.Subscriber
	// Stream is the topic to consume. Default sensorhub.DefaultEventsStream.
	Stream string
	// DedupeSize is how many handled UUIDs are remembered to drop repeats.
	// Default DefaultDedupeSize (10,000).
	DedupeSize int
	// Logger receives a Warn record for each message that is not an
	// event. Default slog.Default().
	Logger *slog.Logger
}

// Consumer dispatches events by type. Register handlers before Run.
type Consumer struct {
	cfg      Config
	handlers map[string]HandlerFunc
	seen     *Dedupe
}

// NewConsumer returns a Consumer for cfg.
func NewConsumer(cfg Config) (*Consumer, error) {
	if cfg.Subscriber == nil {
		return nil, errors.New("events: Config.Subscriber is nil")
	}
	if cfg.DedupeSize < 0 {
		return nil, fmt.Errorf("events: dedupe size must not be negative, got %d", cfg.DedupeSize)
	}
	if cfg.Stream == "" {
		cfg.Stream = sensorhub.DefaultEventsStream
	}
	if cfg.DedupeSize == 0 {
		cfg.DedupeSize = DefaultDedupeSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Consumer{cfg: cfg, handlers: make(map[string]HandlerFunc), seen: NewDedupe(cfg.DedupeSize)}, nil
}

// Handle registers h for events of type typ, replacing an earlier one.
// Events of types without a handler are acked and skipped.
func (c *Consumer) Handle(typ string, h HandlerFunc) { c.handlers[typ] = h }

// On registers a handler for events of type typ whose payload decodes into
// T, such as sensorhub.ReadingsStored or threshold.Crossed. An event whose
// payload does not decode is logged and skipped.
func On[T any](c *Consumer, typ string, h func(ctx context.Context, e sensorhub.Event, payload T) error) {
	c.Handle(typ, func(ctx context.Context, e sensorhub.Event) error {
		var p T
		if err := e.Decode(&p); err != nil {
			c.cfg.Logger.Warn("events: payload does not decode, skipped", "uuid", e.UUID, "type", e.Type, "error", err)
			return nil
		}
		return h(ctx, e, p)
	})
}

// Run consumes until ctx ends or the subscription closes, then closes the
// subscriber. Messages are handled one at a time, in the order the
// subscriber delivers them.
func (c *Consumer) Run(ctx context.Context) error {
	defer func() { _ = c.cfg.Subscriber.Close() }()
	msgs, err := c.cfg.Subscriber.Subscribe(ctx, c.cfg.Stream)
	if err != nil {
		return fmt.Errorf("events: subscribe to %s: %w", c.cfg.Stream, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-msgs:
			if !ok {
				return nil
			}
			if err := c.handle(ctx, msg); err != nil {
				msg.Nack()
				continue
			}
			msg.Ack()
		}
	}
}

func (c *Consumer) handle(ctx context.Context, msg *message.Message) error {
	e, err := sensorhub.ParseEvent(msg)
	if err != nil {
		c.cfg.Logger.Warn("events: not an event, skipped", "message_id", msg.UUID, "error", err)
		return nil
	}
	h := c.handlers[e.Type]
	if h == nil || c.seen.Seen(e.UUID) {
		return nil
	}
	if err := h(ctx, e); err != nil {
		c.cfg.Logger.Warn("events: handler failed, event comes again", "uuid", e.UUID, "type", e.Type, "error", err)
		return err
	}
	c.seen.Add(e.UUID)
	return nil
}

// Dedupe remembers the last Size UUIDs added, forgetting the oldest first.
// It is safe for concurrent use.
type Dedupe struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

// NewDedupe returns a Dedupe remembering size UUIDs (at least one).
func NewDedupe(size int) *Dedupe {
	size = max(size, 1)
	return &Dedupe{set: make(map[string]struct{}, size), ring: make([]string, size)}
}

// Seen reports whether id is remembered.
func (d *Dedupe) Seen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.set[id]
	return ok
}

// Add remembers id, forgetting the oldest UUID when full.
func (d *Dedupe) Add(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[id]; ok {
		return
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = id
	d.set[id] = struct{}{}
	d.next = (d.next + 1) % len(d.ring)
}
