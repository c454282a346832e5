package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DefaultChannel is the legacy Pub/Sub channel producers PUBLISH readings
// to. Part of the wire contract.
const DefaultChannel = "sensor_stream"

// Bridge defaults, used where a BridgeConfig field is zero.
const (
	DefaultAppendAttempts = 5
)

// BridgeConfig configures a Bridge. Client is required; every other zero
// field takes the default its comment names.
type BridgeConfig struct {
	// Client is used both to subscribe and to append. The bridge owns the
	// Pub/Sub connection it opens, not the client.
	Client goredis.UniversalClient
	// Channel is the Pub/Sub channel to subscribe to.
	// Default DefaultChannel ("sensor_stream").
	Channel string
	// Stream is the stream each message is appended to.
	// Default sensorhub.DefaultStream ("sensor_stream").
	Stream string
	// AppendAttempts bounds how often one message's XADD is tried before it
	// is counted as failed. Default DefaultAppendAttempts (5).
	AppendAttempts int
	// Logger receives the bridge's logs. Default slog.Default().
	Logger *slog.Logger
}

// BridgeStats counts what a bridge did. Pub/Sub is at most once: messages
// published while the bridge was not subscribed are not counted anywhere.
type BridgeStats struct {
	// Received counts messages received on the channel.
	Received uint64
	// Appended counts messages appended to the stream.
	Appended uint64
	// Failed counts received messages that could not be appended.
	Failed uint64
}

// Bridge forwards the legacy Pub/Sub channel to the stream: each message is
// appended unchanged, at once, as the entry's payload field, so the rest of
// the pipeline has one input with at-least-once delivery from there on.
type Bridge struct {
	cfg                        BridgeConfig
	received, appended, failed atomic.Uint64

	mu     sync.Mutex
	pubsub *goredis.PubSub
	done   chan struct{}
	// stopping is closed when Stop begins; stopped guards the close.
	stopping chan struct{}
	stopped  atomic.Bool
	// abandoned is closed when Stop gives up waiting, and cuts short the
	// pause between append attempts; abandon guards the close.
	abandoned chan struct{}
	abandon   sync.Once
}

// NewBridge returns a bridge for cfg.
func NewBridge(cfg BridgeConfig) (*Bridge, error) {
	if cfg.Client == nil {
		return nil, errors.New("redis: bridge config: redis client is required")
	}
	if cfg.AppendAttempts < 0 {
		return nil, fmt.Errorf("redis: bridge config: append attempts must not be negative, got %d", cfg.AppendAttempts)
	}
	if cfg.Channel == "" {
		cfg.Channel = DefaultChannel
	}
	if cfg.Stream == "" {
		cfg.Stream = sensorhub.DefaultStream
	}
	if cfg.AppendAttempts == 0 {
		cfg.AppendAttempts = DefaultAppendAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Bridge{cfg: cfg, done: make(chan struct{}), stopping: make(chan struct{}), abandoned: make(chan struct{})}, nil
}

// Start subscribes to the channel and returns once the subscription is
// confirmed; messages are forwarded in the background until Stop.
func (b *Bridge) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pubsub != nil {
		return errors.New("redis: bridge already started")
	}
	ps := b.cfg.Client.Subscribe(ctx, b.cfg.Channel)
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return fmt.Errorf("redis: bridge: subscribe %q: %w", b.cfg.Channel, err)
	}
	b.pubsub = ps
	go b.forward(context.WithoutCancel(ctx), ps)
	b.cfg.Logger.Info("redis: bridge started", "channel", b.cfg.Channel, "stream", b.cfg.Stream)
	return nil
}

// Stop unsubscribes, appends every message Redis sent before it confirmed
// the unsubscription, then closes the subscription. Redis counted those
// messages as received by the bridge when it published them and never sends
// them again, so dropping them with the connection would lose them
// silently. ctx bounds the wait; what is not appended by then is lost.
func (b *Bridge) Stop(ctx context.Context) error {
	b.mu.Lock()
	ps := b.pubsub
	b.mu.Unlock()
	if ps == nil {
		return nil
	}
	if b.stopped.CompareAndSwap(false, true) {
		close(b.stopping)
	}
	if err := ps.Unsubscribe(ctx, b.cfg.Channel); err != nil {
		// No confirmation will come; what the connection held is gone
		// with it.
		b.cfg.Logger.Warn("redis: bridge: unsubscribe failed, closing", "channel", b.cfg.Channel, "error", err)
		_ = ps.Close()
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		b.abandon.Do(func() { close(b.abandoned) })
		_ = ps.Close()
		return fmt.Errorf("redis: bridge: stop: %w", ctx.Err())
	}
	err := ps.Close()
	s := b.Stats()
	b.cfg.Logger.Info("redis: bridge stopped", "received", s.Received, "appended", s.Appended, "failed", s.Failed)
	if err != nil {
		return fmt.Errorf("redis: bridge: close subscription: %w", err)
	}
	return nil
}

// forward appends every received message until Redis confirms Stop's
// unsubscription, or the subscription fails while stopping. Receive
// reconnects and resubscribes after a connection error; the errors in
// between are backed off, never spun on.
func (b *Bridge) forward(ctx context.Context, ps *goredis.PubSub) {
	defer close(b.done)
	retry := newBackoff(minRetryBackoff, maxRetryBackoff)
	for {
		reply, err := ps.Receive(ctx)
		if err != nil {
			if b.stopped.Load() {
				return
			}
			wait := retry.NextBackOff()
			b.cfg.Logger.Warn("redis: bridge: receive failed, retrying", "channel", b.cfg.Channel, "error", err, "backoff", wait)
			sleep(b.stopping, wait)
			continue
		}
		retry.Reset()
		msg, ok := reply.(*goredis.Message)
		if !ok {
			// Subscription confirmations: after Stop's unsubscribe
			// nothing more comes. Everything else (pongs) is ignored.
			if sub, ok := reply.(*goredis.Subscription); ok && sub.Kind == "unsubscribe" && b.stopped.Load() {
				return
			}
			continue
		}
		b.received.Add(1)
		if err := b.appendMessage(ctx, msg.Payload); err != nil {
			b.failed.Add(1)
			b.cfg.Logger.Error("redis: bridge: message lost", "channel", b.cfg.Channel, "stream", b.cfg.Stream,
				"error", err, "payload_bytes", len(msg.Payload))
			continue
		}
		b.appended.Add(1)
	}
}

// appendMessage appends payload to the stream, trying AppendAttempts times
// with a backoff in between; the retries go on while Stop waits, and end
// when it gives up.
func (b *Bridge) appendMessage(ctx context.Context, payload string) error {
	args := &goredis.XAddArgs{Stream: b.cfg.Stream, Values: []any{"payload", payload}}
	retry := newBackoff(minRetryBackoff, maxRetryBackoff)
	var err error
	for attempt := 1; attempt <= b.cfg.AppendAttempts; attempt++ {
		if err = b.cfg.Client.XAdd(ctx, args).Err(); err == nil {
			return nil
		}
		if attempt < b.cfg.AppendAttempts && !sleep(b.abandoned, retry.NextBackOff()) {
			return fmt.Errorf("append to stream %q: Stop gave up after %d attempts: %w", b.cfg.Stream, attempt, err)
		}
	}
	return fmt.Errorf("append to stream %q after %d attempts: %w", b.cfg.Stream, b.cfg.AppendAttempts, err)
}

// Stats returns a snapshot of the bridge's counters.
func (b *Bridge) Stats() BridgeStats {
	return BridgeStats{Received: b.received.Load(), Appended: b.appended.Load(), Failed: b.failed.Load()}
}
