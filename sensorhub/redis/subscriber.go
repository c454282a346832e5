package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/redis/internal/respbound"
)

// SubscriberStats counts what a subscriber did since it was created.
type SubscriberStats struct {
	// Delivered counts messages handed to the consumer, redeliveries too.
	Delivered uint64
	// Acked counts entries acknowledged in Redis.
	Acked uint64
	// Nacked counts messages the consumer nacked.
	Nacked uint64
	// Claimed counts entries taken over from idle consumers.
	Claimed uint64
	// Poisoned counts entries moved to the poison stream after their
	// handler failed MaxDeliveries times.
	Poisoned uint64
	// TooLarge counts entries moved to the poison stream, with reason
	// sensorhub.ReasonTooLarge, for a field over MaxFieldBytes.
	TooLarge uint64
	// GroupsRecreated counts consumer groups created again after Redis lost
	// them (NOGROUP): a Redis restart without persistence, or a deleted
	// stream. Entries Redis lost with them are not counted anywhere else.
	GroupsRecreated uint64
	// ReadErrors counts failed reads, each followed by a backoff.
	ReadErrors uint64
	// RefusedCommands counts, by kind (NOPERM, WRONGTYPE, CROSSSLOT, …),
	// the commands of the subscriber's transport that Redis refused for a
	// reason retrying cannot fix; see Transport.Check. It counts those of
	// the transport's poison publisher too.
	RefusedCommands map[string]uint64
}

// Subscriber reads a Redis stream through a consumer group with many entries
// in flight: XREADGROUP fetches up to BatchSize entries at a time while
// earlier ones are still being handled, up to MaxInFlight unacked, and acks
// are gathered into one XACK per round trip. On start it first re-reads the
// entries this consumer had pending (a crash or restart left them unacked),
// then new ones; entries that dead consumers left idle for MaxIdleTime are
// claimed with XAUTOCLAIM, while the idle time of the entries in hand is
// reset every ClaimInterval so that no other consumer claims them. Only
// nacks spend an entry's MaxDeliveries budget (see the package doc). Every
// entry becomes a message, whatever its layout (see PayloadFields), with its
// entry id in the sensorhub.MetadataEntryID metadata. Order is not
// guaranteed. Entries it poisons itself, of whatever topic, go to its
// transport's PoisonStream. Get one from Transport.Subscriber.
type Subscriber struct {
	cfg     Config
	client  goredis.UniversalClient
	closing chan struct{}
	wg      sync.WaitGroup
	closed  atomic.Bool
	// bound tells a field over MaxFieldBytes, or the stand-in the
	// client's connections read in its place.
	bound respbound.Bound
	// poisons is the transport's poison stream, errs its error log.
	poisons *poisonStream
	errs    *errorLog

	delivered, acked, nacked, claimed, poisoned, tooLarge, groupsRecreated, readErrors atomic.Uint64
}

func newSubscriber(cfg Config, client goredis.UniversalClient, bound respbound.Bound, poisons *poisonStream, errs *errorLog) *Subscriber {
	return &Subscriber{cfg: cfg, client: client, bound: bound, poisons: poisons, errs: errs, closing: make(chan struct{})}
}

// Stats returns a snapshot of the subscriber's counters.
func (s *Subscriber) Stats() SubscriberStats {
	return SubscriberStats{
		Delivered:       s.delivered.Load(),
		Acked:           s.acked.Load(),
		Nacked:          s.nacked.Load(),
		Claimed:         s.claimed.Load(),
		Poisoned:        s.poisoned.Load(),
		TooLarge:        s.tooLarge.Load(),
		GroupsRecreated: s.groupsRecreated.Load(),
		ReadErrors:      s.readErrors.Load(),
		RefusedCommands: s.errs.snapshot(),
	}
}

// Subscribe starts consuming stream and returns the channel messages arrive
// on. The channel is closed when ctx ends or the subscriber closes. The
// consumer group is created, with the stream, if missing.
func (s *Subscriber) Subscribe(ctx context.Context, stream string) (<-chan *message.Message, error) {
	if s.closed.Load() {
		return nil, errors.New("redis: subscriber closed")
	}
	if err := s.createGroup(ctx, stream); err != nil {
		return nil, err
	}
	// ctx ends delivery; drain outlives it by up to CloseTimeout, for the
	// acks of messages in hand and for the contexts they carry; flush as
	// long, for the acker's last XACKs.
	drain, stopDrain := context.WithCancel(context.WithoutCancel(ctx))
	flush, stopFlush := context.WithCancel(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		Subscriber: s,
		ctx:        ctx,
		drain:      drain,
		flush:      flush,
		stream:     stream,
		out:        make(chan *message.Message),
		slots:      make(chan struct{}, s.cfg.MaxInFlight),
		acks:       make(chan string, s.cfg.MaxInFlight),
		inFlight:   make(map[string]struct{}),
		bundles:    bundleSlots(s.cfg),
		log:        s.cfg.Logger.With("stream", stream, "group", s.cfg.Group, "consumer", s.cfg.Consumer),
	}
	var workers sync.WaitGroup
	workers.Go(sub.read)
	workers.Go(sub.claim)
	workers.Go(sub.keepAlive)
	ackerDone := make(chan struct{})
	go func() { defer close(ackerDone); sub.ack() }()

	s.wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		cancel()
		deadline := time.AfterFunc(s.cfg.CloseTimeout, func() { stopDrain(); stopFlush() })
		defer deadline.Stop()
		workers.Wait()
		sub.handlers.Wait()
		stopDrain()
		close(sub.acks)
		<-ackerDone
		stopFlush()
		close(sub.out)
	})
	return sub.out, nil
}

// Close stops reading, waits up to CloseTimeout for the messages already
// delivered to be acked, and sends those acks. Messages not acked by then
// stay pending in Redis and are delivered again, to this consumer first.
// The client stays open: it is the transport's.
func (s *Subscriber) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	s.wg.Wait()
	return nil
}

func (s *Subscriber) createGroup(ctx context.Context, stream string) error {
	err := s.client.XGroupCreateMkStream(ctx, stream, s.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis: create consumer group %q on %q: %w", s.cfg.Group, stream, err)
	}
	return nil
}

// subscription is one Subscribe call: a reader, a claimer and an acker
// around one output channel.
type subscription struct {
	*Subscriber
	// ctx ends when the subscription stops delivering.
	ctx context.Context
	// drain ends CloseTimeout after ctx, or once every message in hand is
	// finished; the contexts of delivered messages derive from it.
	drain context.Context
	// flush ends CloseTimeout after ctx, or once the acker is done; it
	// cuts short the acker's waits between failed XACKs.
	flush  context.Context
	stream string
	out    chan *message.Message
	log    *slog.Logger

	// slots holds one token per message in flight: taken before an entry
	// is read or claimed, given back once it is acked in Redis or poisoned.
	slots chan struct{}
	// bundles holds one token per bundle in flight, with Bundles (else
	// nil): taken before a read or claim, given back once its bundle is
	// settled (see bundleSlots).
	bundles chan struct{}
	// acks carries the ids of acked messages to the acker.
	acks chan string
	// handlers tracks the goroutines waiting for a message's ack or nack.
	handlers sync.WaitGroup

	mu sync.Mutex
	// inFlight holds the ids in hand, delivered and not yet acked or
	// poisoned; hold is its one gate, so that no entry is delivered twice
	// by this process.
	inFlight map[string]struct{}
}

// bundleSlots returns the bound on bundles in flight with Bundles, nil
// without: twice as many as it takes full reads to fill MaxInFlight. Each
// bundle holds two goroutines (the router's handler and the wait for the
// bundle) whatever its size, so a trickle of small reads, as while the
// database is down, cannot hold more goroutines than a few full reads;
// its entries then wait in Redis.
func bundleSlots(cfg Config) chan struct{} {
	if !cfg.Bundles {
		return nil
	}
	return make(chan struct{}, max(2, 2*cfg.MaxInFlight/cfg.BatchSize))
}

// Interface guard.
var _ message.Subscriber = (*Subscriber)(nil)
