package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/redis/internal/respbound"
)

// Transport owns sensorhub's use of one Redis stream: its consumer group
// and consumer, its one poison stream, and the clients they go through. It
// hands out the stream's Subscriber, the publisher of its poison stream and
// the poison queue, all three naming the same poison stream.
type Transport struct {
	cfg    Config
	sub    *Subscriber
	poison *poisonPublisher
	queue  *PoisonQueue
	errs   *errorLog
	// owned are the clients New created from Config.Options; Close
	// closes them, and never a client the caller passed in.
	owned []goredis.UniversalClient
}

// New returns a transport for cfg. With cfg.Options or cfg.ClusterOptions
// it creates its clients, and the subscriber's drops fields over
// MaxFieldBytes as they arrive; with cfg.Client it uses that client as it
// is.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis: transport config: %w", err)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("redis: transport config: %w", err)
	}
	t := &Transport{cfg: cfg, errs: newErrorLog(cfg.Logger)}
	bound := respbound.New(int64(cfg.MaxFieldBytes))
	client, reads, scans := cfg.Client, cfg.Client, cfg.Client
	if client == nil {
		var readHooks []goredis.Hook
		if cfg.MaxFieldBytes > 0 {
			readHooks = append(readHooks, bound)
		}
		client, reads, scans = cfg.newClient(), cfg.newClient(readHooks...), cfg.newClient(respbound.New(scanFieldBytes))
		t.owned = []goredis.UniversalClient{client, reads, scans}
	}
	poisons := &poisonStream{client: client, scan: scans, name: cfg.PoisonStream}
	t.sub = newSubscriber(cfg, reads, bound, poisons, t.errs)
	t.poison = &poisonPublisher{poisons: poisons, errs: t.errs}
	t.queue = &PoisonQueue{client: client, poison: cfg.PoisonStream, target: cfg.Stream}
	return t, nil
}

// scanFieldBytes bounds the fields the poison record lookup reads (see
// poisonStream.recordsOf): it needs the entry_id of each record, and the
// payloads, up to the message limit each, would cost memory for nothing.
const scanFieldBytes = 256

// newClient returns a client of cfg.Options or cfg.ClusterOptions for New
// to own, with hooks on every connection it dials.
func (c Config) newClient(hooks ...goredis.Hook) goredis.UniversalClient {
	if c.ClusterOptions != nil {
		client := goredis.NewClusterClient(clusterOptions(c.ClusterOptions))
		// A cluster client dials through a client per node, made as it
		// finds the node; its own dial hooks are never called.
		client.OnNewNode(func(node *goredis.Client) {
			for _, h := range hooks {
				node.AddHook(h)
			}
		})
		return client
	}
	client := goredis.NewClient(clientOptions(c.Options))
	for _, h := range hooks {
		client.AddHook(h)
	}
	return client
}

// clusterOptions returns a copy of opts for a cluster client New creates,
// one that dials each connection once, as clientOptions does, and reloads
// its slot map DefaultClusterReloadInterval after the last load when
// ClusterStateReloadInterval is zero. MaxRedirects stays: it bounds the
// redirections (MOVED, ASK) the client follows, which no retry of the
// package could do.
func clusterOptions(opts *goredis.ClusterOptions) *goredis.ClusterOptions {
	o := *opts
	o.DialerRetries = 1
	o.ClusterStateReloadInterval = cmp.Or(o.ClusterStateReloadInterval, DefaultClusterReloadInterval)
	return &o
}

// clientOptions returns a copy of opts for a client New creates, one that
// tries each command once and dials each connection once: the package's
// loops retry failed commands themselves, with the package's backoff
// (backoff.go), and its other commands fall back on what the process
// knows (nack counts) or leave the entry pending. go-redis's own retries
// (MaxRetries, 3 by default, and DialerRetries, 5) would turn each attempt
// into several connections while Redis resets or refuses them. Each
// client gets a copy of its own, as go-redis fills in the defaults of the
// options it is given.
func clientOptions(opts *goredis.Options) *goredis.Options {
	o := *opts
	o.MaxRetries = -1 // -1, as 0 means the default
	o.DialerRetries = 1
	return &o
}

// Subscriber returns the transport's subscriber. Closing it stops its
// subscriptions and leaves the clients open.
func (t *Transport) Subscriber() *Subscriber { return t.sub }

// PoisonPublisher returns a publisher that appends poisoned messages, as
// PoisonRecord entries, to PoisonStream; publishing to any other topic is
// an error. Give it to the hub as its poison publisher. Its Close does
// nothing: the transport's Close ends it.
func (t *Transport) PoisonPublisher() message.Publisher { return t.poison }

// PoisonQueue returns the reader of PoisonStream, which replays to Stream.
func (t *Transport) PoisonQueue() *PoisonQueue { return t.queue }

// PoisonStream returns the name of the poison stream, Config.PoisonStream
// or its default: the name to give the hub and the metrics.
func (t *Transport) PoisonStream() string { return t.cfg.PoisonStream }

// Check fails for a minute after Redis refused one of the transport's
// commands for a reason retrying cannot fix: NOPERM (the ACL user lacks a
// right), WRONGTYPE, CROSSSLOT, NOSCRIPT, EXECABORT or an unknown command.
// A poison step so refused is not retried in a loop: the entry stays
// pending, and is tried again when next delivered or claimed. Reads and
// acks go on being retried with backoff, as they are the subscriber's
// whole job. Register Check as a health check.
func (t *Transport) Check(ctx context.Context) error { return t.errs.Check(ctx) }

// Close closes the subscriber, waiting for the acks of what it delivered,
// then the clients the transport created. A client passed in Config.Client
// stays open.
func (t *Transport) Close() error {
	errs := []error{t.sub.Close()}
	for _, c := range t.owned {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis: transport: close client: %w", err))
		}
	}
	return errors.Join(errs...)
}
