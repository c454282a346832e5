package redis

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DefaultGroup is the consumer group sensorhub reads the stream with. Part of
// the wire contract: renaming it would re-read the whole stream.
const DefaultGroup = "sensorhub"

// ReasonRedeliveryLimit is the poison reason of an entry delivered more than
// SubscriberConfig.MaxDeliveries times. Part of the wire contract.
const ReasonRedeliveryLimit = "redelivery_limit"

// Subscriber defaults, used where a SubscriberConfig field is zero.
const (
	DefaultBatchSize     = 512
	DefaultMaxInFlight   = 1024
	DefaultBlockTime     = time.Second
	DefaultMaxIdleTime   = 30 * time.Second
	DefaultClaimInterval = 5 * time.Second
	DefaultNackDelay     = time.Second
	DefaultMaxNackDelay  = time.Minute
	DefaultMaxDeliveries = 10
	DefaultCloseTimeout  = 30 * time.Second
	DefaultReadPace      = 5 * time.Millisecond
)

// Read errors are retried after a backoff between these bounds.
const (
	minReadBackoff = 100 * time.Millisecond
	maxReadBackoff = 5 * time.Second
)

// SubscriberConfig configures NewSubscriber. Client is required; every other
// zero field takes the default its comment names.
type SubscriberConfig struct {
	// Client is the connection the subscriber reads and acks with. The
	// subscriber owns it: Close closes it, so give it a client of its own.
	Client goredis.UniversalClient
	// Group is the consumer group. Default DefaultGroup ("sensorhub").
	Group string
	// Consumer names this process within the group. It must be stable
	// across restarts, so that a restarted process finds its own pending
	// entries first. Default: the host name.
	Consumer string
	// BatchSize is the most entries one XREADGROUP asks for.
	// Default DefaultBatchSize (512).
	BatchSize int
	// MaxInFlight bounds the entries delivered but not yet acked; reading
	// pauses at the bound, which is what bounds memory when the sink is
	// slow or down. Each message in flight holds two goroutines (the
	// router's handler and the wait for its ack) and its data: about 20 KiB
	// of RSS measured, 21 MiB at the default. Default DefaultMaxInFlight
	// (1024).
	MaxInFlight int
	// BlockTime bounds one blocking read, and so how quickly Close returns.
	// Default DefaultBlockTime (1 s).
	BlockTime time.Duration
	// MaxIdleTime is how long an entry may stay unacked with another
	// consumer before this one claims it. Default DefaultMaxIdleTime (30 s).
	MaxIdleTime time.Duration
	// ClaimInterval is how often idle entries are looked for.
	// Default DefaultClaimInterval (5 s).
	ClaimInterval time.Duration
	// NackDelay is the pause before a nacked message is delivered again;
	// it doubles with each further nack of the same entry up to
	// MaxNackDelay, so a failing message never spins.
	// Default DefaultNackDelay (1 s).
	NackDelay time.Duration
	// MaxNackDelay caps NackDelay's doubling. Default DefaultMaxNackDelay (1 min).
	MaxNackDelay time.Duration
	// MaxDeliveries is how often an entry is delivered before it goes to
	// the poison stream (the stream name + sensorhub.PoisonSuffix) with
	// reason ReasonRedeliveryLimit instead of looping for ever.
	// Default DefaultMaxDeliveries (10).
	MaxDeliveries int
	// ReadPace is the pause after a read that returned fewer entries than
	// asked for, so that at a steady rate entries are fetched and committed
	// a few milliseconds' worth at a time instead of one wake-up each; a
	// backlog is read without pause. It adds at most ReadPace to latency.
	// Default DefaultReadPace (5 ms); negative turns pacing off.
	ReadPace time.Duration
	// MaxFieldBytes bounds the size of one field of a stream entry, name or
	// value, the payload among them. A larger one is never read into
	// memory: the subscriber's connections drop its bytes as they arrive,
	// and Redis itself moves the entry to the poison stream with reason
	// sensorhub.ReasonTooLarge, its payload field copied as it was, and
	// acks it. Without this bound a producer could make the subscriber read
	// BatchSize entries of up to 512 MiB each (Redis's proto-max-bulk-len)
	// in one XREADGROUP. Set it to the hub's DecoderConfig.MaxMessageBytes,
	// which a payload must not exceed anyway. It wraps the connections that
	// Client dials from NewSubscriber on; an oversized field read on an
	// older connection is poisoned the same way, after it was read.
	// Default sensorhub.DefaultMaxMessageBytes (64 KiB); negative turns the
	// bound off.
	MaxFieldBytes int
	// CloseTimeout bounds how long Close waits for the acks of messages
	// already delivered; what is not acked by then stays pending and is
	// delivered again. Default DefaultCloseTimeout (30 s).
	CloseTimeout time.Duration
	// Logger receives the subscriber's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with the configuration at once.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("redis client is required"))
	}
	for name, d := range map[string]time.Duration{"block time": c.BlockTime, "max idle time": c.MaxIdleTime,
		"claim interval": c.ClaimInterval, "nack delay": c.NackDelay, "max nack delay": c.MaxNackDelay,
		"close timeout": c.CloseTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	for name, n := range map[string]int{"batch size": c.BatchSize, "max in flight": c.MaxInFlight, "max deliveries": c.MaxDeliveries} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", name, n))
		}
	}
	return errors.Join(errs...)
}

func (c *SubscriberConfig) setDefaults() error {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Consumer == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("consumer name from host name: %w", err)
		}
		c.Consumer = host
	}
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.MaxDeliveries = cmp.Or(c.MaxDeliveries, DefaultMaxDeliveries)
	c.BlockTime = cmp.Or(c.BlockTime, DefaultBlockTime)
	c.MaxIdleTime = cmp.Or(c.MaxIdleTime, DefaultMaxIdleTime)
	c.ClaimInterval = cmp.Or(c.ClaimInterval, DefaultClaimInterval)
	c.NackDelay = cmp.Or(c.NackDelay, DefaultNackDelay)
	c.MaxNackDelay = cmp.Or(c.MaxNackDelay, DefaultMaxNackDelay)
	c.CloseTimeout = cmp.Or(c.CloseTimeout, DefaultCloseTimeout)
	c.ReadPace = cmp.Or(c.ReadPace, DefaultReadPace)
	c.MaxFieldBytes = cmp.Or(c.MaxFieldBytes, sensorhub.DefaultMaxMessageBytes)
	c.BatchSize = min(c.BatchSize, c.MaxInFlight)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

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
	// Poisoned counts entries moved to the poison stream for exceeding
	// MaxDeliveries.
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
}

// Subscriber reads a Redis stream through a consumer group with many entries
// in flight: XREADGROUP fetches up to BatchSize entries at a time while
// earlier ones are still being handled, up to MaxInFlight unacked, and acks
// are gathered into one XACK per round trip. On start it first re-reads the
// entries this consumer had pending (a crash or restart left them unacked),
// then new ones; entries that dead consumers left idle for MaxIdleTime are
// claimed with XAUTOCLAIM. Every entry becomes a message, whatever its
// layout (see PayloadFields), with its entry id in the
// sensorhub.MetadataEntryID metadata. Order is not guaranteed.
type Subscriber struct {
	cfg     SubscriberConfig
	client  goredis.UniversalClient
	closing chan struct{}
	wg      sync.WaitGroup
	closed  atomic.Bool
	// marker starts the value that stands in for a field over
	// MaxFieldBytes in what the client reads; see boundedConn.
	marker string

	delivered, acked, nacked, claimed, poisoned, tooLarge, groupsRecreated, readErrors atomic.Uint64
}

// NewSubscriber returns a subscriber for cfg.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis: subscriber config: %w", err)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("redis: subscriber config: %w", err)
	}
	s := &Subscriber{cfg: cfg, client: cfg.Client, closing: make(chan struct{})}
	if cfg.MaxFieldBytes > 0 {
		// NUL and a random part: no field of a producer's is taken for
		// one that was dropped.
		s.marker = "\x00sensorhub:too_large:" + rand.Text() + ":"
		cfg.Client.AddHook(fieldBound{limit: int64(cfg.MaxFieldBytes), marker: s.marker})
	}
	return s, nil
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
	// acks of messages in hand and for the contexts they carry.
	drain, stopDrain := context.WithCancel(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		Subscriber: s,
		ctx:        ctx,
		drain:      drain,
		stream:     stream,
		poison:     stream + sensorhub.PoisonSuffix,
		out:        make(chan *message.Message),
		slots:      make(chan struct{}, s.cfg.MaxInFlight),
		acks:       make(chan string, s.cfg.MaxInFlight),
		inFlight:   make(map[string]struct{}),
		log:        s.cfg.Logger.With("stream", stream, "group", s.cfg.Group, "consumer", s.cfg.Consumer),
	}
	var workers sync.WaitGroup
	workers.Go(sub.read)
	workers.Go(sub.claim)
	ackerDone := make(chan struct{})
	go func() { defer close(ackerDone); sub.ack() }()

	s.wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		cancel()
		deadline := time.AfterFunc(s.cfg.CloseTimeout, stopDrain)
		workers.Wait()
		sub.handlers.Wait()
		deadline.Stop()
		stopDrain()
		close(sub.acks)
		<-ackerDone
		close(sub.out)
	})
	return sub.out, nil
}

// Close stops reading, waits up to CloseTimeout for the messages already
// delivered to be acked, sends those acks and closes the client. Messages
// not acked by then stay pending in Redis and are delivered again, to this
// consumer first.
func (s *Subscriber) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	s.wg.Wait()
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis: subscriber: close client: %w", err)
	}
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
	drain  context.Context
	stream string
	poison string
	out    chan *message.Message
	log    *slog.Logger

	// slots holds one token per message in flight: taken before an entry
	// is read or claimed, given back once it is acked in Redis or poisoned.
	slots chan struct{}
	// acks carries the ids of acked messages to the acker.
	acks chan string
	// handlers tracks the goroutines waiting for a message's ack or nack.
	handlers sync.WaitGroup

	mu sync.Mutex
	// inFlight holds the ids delivered and not yet acked, so that the
	// claimer does not deliver a second copy of an entry still in hand.
	inFlight map[string]struct{}
}

// read delivers this consumer's pending entries, then new ones.
func (s *subscription) read() {
	pendingFrom := "0"
	backoff := minReadBackoff
	for s.ctx.Err() == nil {
		n := s.acquire(s.cfg.BatchSize)
		if n == 0 {
			return
		}
		id := ">"
		if pendingFrom != "" {
			id = pendingFrom
		}
		streams, err := s.client.XReadGroup(s.ctx, &goredis.XReadGroupArgs{
			Group:    s.cfg.Group,
			Consumer: s.cfg.Consumer,
			Streams:  []string{s.stream, id},
			Count:    int64(n),
			Block:    s.cfg.BlockTime,
		}).Result()
		if errors.Is(err, goredis.Nil) {
			err = nil
		}
		if err != nil {
			s.release(n)
			if s.ctx.Err() != nil {
				return
			}
			s.readFailed(err, &backoff)
			continue
		}
		backoff = minReadBackoff
		var entries []goredis.XMessage
		if len(streams) > 0 {
			entries = streams[0].Messages
		}
		s.release(n - len(entries))
		if pendingFrom != "" {
			if len(entries) == 0 {
				pendingFrom = "" // own backlog done: on to new entries
			} else {
				pendingFrom = entries[len(entries)-1].ID
				s.log.Info("redis: redelivering entries left pending by an earlier run", "count", len(entries))
			}
		}
		deliveries := make([]int, len(entries))
		if id == ">" {
			for i := range deliveries {
				deliveries[i] = 1
			}
		} else {
			// Re-reading own pending entries with XREADGROUP 0 raises their
			// delivery count like any delivery: the count Redis reports
			// already includes this one.
			deliveries = s.deliveryCounts(entries)
		}
		s.deliverAll(entries, deliveries)
		if len(entries) > 0 && len(entries) < n && s.cfg.ReadPace > 0 && !s.sleep(s.cfg.ReadPace) {
			return
		}
	}
}

// readFailed handles a failed XREADGROUP: it recreates a lost group and
// backs off otherwise.
func (s *subscription) readFailed(err error, backoff *time.Duration) {
	s.readErrors.Add(1)
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		s.log.Warn("redis: consumer group lost (Redis restarted without persistence, or the stream was deleted); recreating it",
			"error", err)
		if cerr := s.createGroup(s.ctx, s.stream); cerr == nil {
			s.groupsRecreated.Add(1)
			return
		} else {
			err = cerr
		}
	}
	s.log.Warn("redis: read failed, backing off", "error", err, "backoff", *backoff)
	s.sleep(*backoff)
	*backoff = min(2**backoff, maxReadBackoff)
}

// claim takes over entries that other consumers left idle, periodically.
func (s *subscription) claim() {
	ticker := time.NewTicker(s.cfg.ClaimInterval)
	defer ticker.Stop()
	start := "0-0"
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ticker.C:
		}
		s.keepAlive()
		for {
			n := s.acquire(s.cfg.BatchSize)
			if n == 0 {
				return
			}
			entries, next, err := s.client.XAutoClaim(s.ctx, &goredis.XAutoClaimArgs{
				Stream:   s.stream,
				Group:    s.cfg.Group,
				Consumer: s.cfg.Consumer,
				MinIdle:  s.cfg.MaxIdleTime,
				Start:    start,
				Count:    int64(n),
			}).Result()
			if err != nil {
				s.release(n)
				if s.ctx.Err() == nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
					s.log.Warn("redis: claiming idle entries failed", "error", err)
				}
				break
			}
			var claimed []goredis.XMessage
			for _, e := range entries {
				if !s.holding(e.ID) { // one still in hand was only slow
					claimed = append(claimed, e)
				}
			}
			deliveries := s.deliveryCounts(claimed)
			s.claimed.Add(uint64(len(claimed)))
			s.release(n - len(claimed))
			s.deliverAll(claimed, deliveries)
			start = next
			if start == "0-0" {
				break // scanned the whole pending list
			}
		}
	}
}

// keepAlive resets the idle time of the entries in hand, with XCLAIM
// JUSTID, which does not count as a delivery: an entry waiting out a long
// nack delay, or a database outage, is then neither claimed by another
// consumer nor poisoned early for deliveries that never happened.
func (s *subscription) keepAlive() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.inFlight))
	for id := range s.inFlight {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for chunk := range slices.Chunk(ids, s.cfg.BatchSize) {
		err := s.client.XClaimJustID(s.ctx, &goredis.XClaimArgs{
			Stream: s.stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer, Messages: chunk,
		}).Err()
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("redis: keeping entries in hand failed", "count", len(chunk), "error", err)
			return
		}
	}
}

// deliveryCounts asks Redis, in one XPENDING, how often each of entries was
// delivered to this consumer; 1 for any it cannot tell.
func (s *subscription) deliveryCounts(entries []goredis.XMessage) []int {
	counts := make([]int, len(entries))
	for i := range counts {
		counts[i] = 1
	}
	if len(entries) == 0 {
		return counts
	}
	// Entries come in id order; the range may hold other entries of ours.
	pending, err := s.client.XPendingExt(s.ctx, &goredis.XPendingExtArgs{
		Stream: s.stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		Start: entries[0].ID, End: entries[len(entries)-1].ID, Count: int64(len(entries) + s.cfg.MaxInFlight),
	}).Result()
	if err != nil {
		return counts
	}
	byID := make(map[string]int, len(pending))
	for _, p := range pending {
		byID[p.ID] = int(p.RetryCount)
	}
	for i, e := range entries {
		if n, ok := byID[e.ID]; ok {
			counts[i] = n
		}
	}
	return counts
}

// deliverAll hands entries to the consumer, in order, from one goroutine
// per read, each holding one slot. A small goroutine per message then waits
// for its ack or nack, so that acks are not held up behind slower messages
// of the same read and each message's context ends with its ack. Entries
// with a field over MaxFieldBytes, or past MaxDeliveries, are poisoned
// instead.
func (s *subscription) deliverAll(entries []goredis.XMessage, deliveries []int) {
	if len(entries) == 0 {
		return
	}
	s.mu.Lock()
	for _, e := range entries {
		s.inFlight[e.ID] = struct{}{}
	}
	s.mu.Unlock()
	s.handlers.Go(func() {
		for i, e := range entries {
			if field, size, ok := s.oversized(e); ok {
				s.poisonOversized(e, field, size)
				continue
			}
			if deliveries[i] > s.cfg.MaxDeliveries {
				s.poisonEntry(e, deliveries[i])
				continue
			}
			msg, cancel := s.newMessage(e)
			select {
			case s.out <- msg:
				s.delivered.Add(1)
			case <-s.ctx.Done():
				cancel()
				return // the rest stays pending in Redis; the next run delivers it
			}
			d := deliveries[i]
			s.handlers.Go(func() {
				if !s.await(e.ID, msg, cancel) && s.ctx.Err() == nil {
					s.redeliver(e, d)
				}
			})
		}
	})
}

// newMessage turns an entry into a message carrying its entry id and a
// context of its own under the drain context; await cancels it.
func (s *subscription) newMessage(e goredis.XMessage) (*message.Message, context.CancelFunc) {
	msg := messageOf(e.ID, e.Values)
	msg.Metadata.Set(sensorhub.MetadataEntryID, e.ID)
	ctx, cancel := context.WithCancel(s.drain)
	msg.SetContext(ctx)
	return msg, cancel
}

// await waits for msg's ack or nack, then cancels the message's context, as
// Watermill's subscribers do once a message is finished. It reports false
// after a nack, true when done with the entry: acked, or given up at the end
// of the drain.
func (s *subscription) await(id string, msg *message.Message, cancel context.CancelFunc) bool {
	defer cancel()
	select {
	case <-msg.Acked():
		s.acks <- id
		return true
	case <-msg.Nacked():
		s.nacked.Add(1)
		return false
	case <-s.drain.Done():
		return true
	}
}

// redeliver delivers a nacked entry again after NackDelay, doubling the
// delay after each further nack, until it is acked, the subscription ends,
// or the entry passes MaxDeliveries and is poisoned.
func (s *subscription) redeliver(e goredis.XMessage, deliveries int) {
	delay := s.cfg.NackDelay
	for s.ctx.Err() == nil {
		deliveries++
		if deliveries > s.cfg.MaxDeliveries {
			s.poisonEntry(e, deliveries)
			return
		}
		if !s.sleep(delay) {
			return
		}
		delay = min(2*delay, s.cfg.MaxNackDelay)
		msg, cancel := s.newMessage(e)
		select {
		case s.out <- msg:
			s.delivered.Add(1)
		case <-s.ctx.Done():
			cancel()
			return // stays pending in Redis; the next run delivers it
		}
		if s.await(e.ID, msg, cancel) {
			return
		}
	}
}

// poisonEntry moves an entry that was delivered too often to the poison
// stream and acks it, in one MULTI/EXEC, so it is neither lost nor doubled.
func (s *subscription) poisonEntry(e goredis.XMessage, deliveries int) {
	msg := messageOf(e.ID, e.Values)
	// deliveries counts the delivery that is not going to happen.
	text := fmt.Sprintf("%s: delivered %d times, limit %d", ReasonRedeliveryLimit, deliveries-1, s.cfg.MaxDeliveries)
	moved := s.untilDone(e.ID, func() error {
		_, err := s.client.TxPipelined(s.ctx, func(p goredis.Pipeliner) error {
			p.XAdd(s.ctx, &goredis.XAddArgs{Stream: s.poison, Values: []any{
				"payload", string(msg.Payload),
				sensorhub.MetadataReason, ReasonRedeliveryLimit,
				sensorhub.MetadataError, text,
				sensorhub.MetadataEntryID, e.ID,
				sensorhub.MetadataPoisonedAt, time.Now().UTC().Format(time.RFC3339Nano),
			}})
			p.XAck(s.ctx, s.stream, s.cfg.Group, e.ID)
			return nil
		})
		return err
	})
	if !moved {
		return // stays pending; the limit is checked again on the next delivery
	}
	s.poisoned.Add(1)
	s.log.Warn("redis: entry poisoned", "reason", ReasonRedeliveryLimit, "entry_id", e.ID, "deliveries", deliveries-1)
	s.done(e.ID)
}

// oversized reports the first field of e, payload fields first, whose name
// or value is over MaxFieldBytes: dropped by a boundedConn, or read whole on
// a connection without one. size is the field's size in bytes.
func (s *subscription) oversized(e goredis.XMessage) (field string, size int64, ok bool) {
	if s.cfg.MaxFieldBytes <= 0 {
		return "", 0, false
	}
	// Most entries have no such field: find that out without allocating.
	for name, v := range e.Values {
		value, _ := v.(string)
		if _, ok = s.fieldSize(value); !ok {
			_, ok = s.fieldSize(name)
		}
		if ok {
			break
		}
	}
	if !ok {
		return "", 0, false
	}
	names := slices.Sorted(maps.Keys(e.Values))
	slices.SortStableFunc(names, func(a, b string) int {
		return cmp.Compare(payloadRank(a), payloadRank(b))
	})
	for _, name := range names {
		value, _ := e.Values[name].(string)
		if n, ok := s.fieldSize(value); ok {
			return name, n, true
		}
		if n, ok := s.fieldSize(name); ok {
			return fmt.Sprintf("(a name of %d bytes)", n), n, true
		}
	}
	return "", 0, false
}

// payloadRank orders field names as messageOf prefers them, any other last.
func payloadRank(name string) int {
	if i := slices.Index(PayloadFields, name); i >= 0 {
		return i
	}
	return len(PayloadFields)
}

// fieldSize returns the size of a name or value over MaxFieldBytes, read
// from the stand-in a boundedConn put in its place or measured.
func (s *subscription) fieldSize(v string) (int64, bool) {
	if rest, ok := strings.CutPrefix(v, s.marker); ok {
		if n, err := strconv.ParseInt(rest, 10, 64); err == nil {
			return n, true
		}
	}
	return int64(len(v)), len(v) > s.cfg.MaxFieldBytes
}

// poisonOversizedScript moves an entry with a field too large to read to
// the poison stream inside Redis, so that the field never crosses the
// network, and acks it. The poison entry's payload is the entry's first
// payload field, or else, as messageOf does, its fields as a JSON object. An
// entry no longer pending in the group (another consumer finished it) is
// left alone, and one trimmed from the stream is poisoned with an empty
// payload.
//
// KEYS: the stream, the poison stream. ARGV: the group, the entry id, the
// number of payload field names, those names in order of preference, then
// the field names and values the poison entry gets besides its payload.
var poisonOversizedScript = goredis.NewScript(`
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then
	return 0
end
local payload = ''
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local k = tonumber(ARGV[3])
if #entry == 1 then
	local fields, values = entry[1][2], {}
	for i = 1, #fields, 2 do
		values[fields[i]] = fields[i + 1]
	end
	payload = nil
	for i = 4, 3 + k do
		if values[ARGV[i]] then
			payload = values[ARGV[i]]
			break
		end
	end
	if payload == nil then
		payload = cjson.encode(values)
	end
end
local add = {'XADD', KEYS[2], '*', 'payload', payload}
for i = 4 + k, #ARGV do
	add[#add + 1] = ARGV[i]
end
redis.call(unpack(add))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// poisonOversized moves an entry with a field over MaxFieldBytes to the
// poison stream with sensorhub.ReasonTooLarge, without reading it.
func (s *subscription) poisonOversized(e goredis.XMessage, field string, size int64) {
	text := fmt.Sprintf("%s: stream entry field %q is %d bytes, limit %d", sensorhub.ReasonTooLarge, field, size, s.cfg.MaxFieldBytes)
	args := []any{s.cfg.Group, e.ID, len(PayloadFields)}
	for _, f := range PayloadFields {
		args = append(args, f)
	}
	args = append(args,
		sensorhub.MetadataReason, sensorhub.ReasonTooLarge,
		sensorhub.MetadataError, text,
		sensorhub.MetadataEntryID, e.ID,
		sensorhub.MetadataPoisonedAt, time.Now().UTC().Format(time.RFC3339Nano))
	var moved int64
	ok := s.untilDone(e.ID, func() error {
		var err error
		moved, err = poisonOversizedScript.Run(s.ctx, s.client, []string{s.stream, s.poison}, args...).Int64()
		return err
	})
	if !ok {
		return // stays pending; checked again on the next delivery
	}
	if moved == 1 {
		s.tooLarge.Add(1)
		s.log.Warn("redis: entry poisoned", "reason", sensorhub.ReasonTooLarge, "entry_id", e.ID, "field", field, "bytes", size)
	}
	s.done(e.ID)
}

// untilDone runs f until it succeeds, backing off while Redis fails, and
// reports false when the subscription ends first.
func (s *subscription) untilDone(id string, f func() error) bool {
	backoff := minReadBackoff
	for {
		err := f()
		if err == nil {
			return true
		}
		if s.ctx.Err() != nil {
			return false
		}
		s.log.Warn("redis: poisoning an entry failed, retrying", "entry_id", id, "error", err)
		if !s.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, maxReadBackoff)
	}
}

// ack sends the ids of acked messages to Redis, as many per XACK as have
// gathered while the previous XACK was on its way. It returns once acks is
// closed and drained.
func (s *subscription) ack() {
	batch := make([]string, 0, s.cfg.BatchSize)
	for id := range s.acks {
		batch = append(batch[:0], id)
	gather:
		for len(batch) < cap(batch) {
			select {
			case id, ok := <-s.acks:
				if !ok {
					break gather
				}
				batch = append(batch, id)
			default:
				break gather
			}
		}
		s.xack(batch)
	}
}

// xack acks ids, retrying while Redis is unreachable. Unacked ids stay
// pending and are delivered again, so giving up at Close loses nothing.
func (s *subscription) xack(ids []string) {
	backoff := minReadBackoff
	// The subscription's context may already be cancelled at shutdown;
	// acks of finished work still go out then.
	ctx := context.WithoutCancel(s.ctx)
	for attempt := 1; ; attempt++ {
		err := s.client.XAck(ctx, s.stream, s.cfg.Group, ids...).Err()
		if err == nil {
			s.acked.Add(uint64(len(ids)))
			for _, id := range ids {
				s.done(id)
			}
			return
		}
		if s.ctx.Err() != nil && attempt >= 3 {
			s.log.Warn("redis: acks not sent at close; the entries will be delivered again", "count", len(ids), "error", err)
			return
		}
		s.log.Warn("redis: ack failed, retrying", "count", len(ids), "error", err, "backoff", backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, maxReadBackoff)
	}
}

// done forgets a finished entry and frees its slot.
func (s *subscription) done(id string) {
	s.mu.Lock()
	delete(s.inFlight, id)
	s.mu.Unlock()
	s.release(1)
}

func (s *subscription) holding(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inFlight[id]
	return ok
}

// acquire takes at least one and at most n slots, waiting for the first. It
// returns 0 once the subscription ends.
func (s *subscription) acquire(n int) int {
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		return 0
	}
	got := 1
	for got < n {
		select {
		case s.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

func (s *subscription) release(n int) {
	for range n {
		<-s.slots
	}
}

// sleep waits for d or the end of the subscription; it reports whether the
// subscription is still running.
func (s *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// fieldBound is a go-redis hook that wraps each connection the client dials
// in a boundedConn.
type fieldBound struct {
	limit  int64
	marker string
}

func (h fieldBound) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &boundedConn{Conn: conn, limit: h.limit, marker: h.marker, buf: make([]byte, 8<<10)}, nil
	}
}

func (fieldBound) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (fieldBound) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// boundedConn passes on what Redis sends, except that it replaces each bulk
// string longer than limit with one of marker and the string's length, and
// drops the string's bytes as they arrive: a reply holding an entry of
// 16 MiB costs the client its buffer, not 16 MiB. It follows RESP2 and
// RESP3 line by line; the length-prefixed types ($ ! = and the chunks ; of
// streamed strings) are the only ones whose bodies may hold line breaks.
// Writes pass untouched. Like any net.Conn it is read by one goroutine at
// a time.
type boundedConn struct {
	net.Conn
	limit  int64
	marker string
	buf    []byte // read from Conn
	obuf   []byte // backs out
	out    []byte // filtered, not yet returned by Read
	line   []byte // the type line being read
	pass   int64  // bytes of a body still to pass on, its CRLF included
	skip   int64  // bytes of an oversized body still to drop, its CRLF included
	err    error  // a read error of Conn's, returned once out is drained
}

func (c *boundedConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if err := c.err; err != nil {
			c.err = nil
			return 0, err
		}
		n, err := c.Conn.Read(c.buf)
		c.out = c.filter(c.obuf[:0], c.buf[:n])
		c.obuf, c.err = c.out[:0], err
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// filter appends to out what b becomes.
func (c *boundedConn) filter(out, b []byte) []byte {
	for len(b) > 0 {
		switch {
		case c.skip > 0:
			n := min(int64(len(b)), c.skip)
			b, c.skip = b[n:], c.skip-n
		case c.pass > 0:
			n := min(int64(len(b)), c.pass)
			out = append(out, b[:n]...)
			b, c.pass = b[n:], c.pass-n
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				return out
			}
			c.line = append(c.line, b[:i+1]...)
			b = b[i+1:]
			out = c.typeLine(out, c.line)
			c.line = c.line[:0]
		}
	}
	return out
}

// typeLine appends a complete type line, or its stand-in, and prepares for
// the body it announces.
func (c *boundedConn) typeLine(out, line []byte) []byte {
	if len(line) < 4 || line[len(line)-2] != '\r' || strings.IndexByte("$!=;", line[0]) < 0 {
		return append(out, line...)
	}
	n, ok := parseLength(line[1 : len(line)-2])
	switch {
	case !ok || (line[0] == ';' && n == 0):
		// Null, a streamed string's start or end: no body.
	case line[0] == '$' && n > c.limit:
		stand := c.marker + strconv.FormatInt(n, 10)
		c.skip = n + 2
		return fmt.Appendf(out, "$%d\r\n%s\r\n", len(stand), stand)
	default:
		c.pass = n + 2
	}
	return append(out, line...)
}

// parseLength parses the decimal length of a RESP type line without
// allocating; it reports false for anything else, such as -1 (null) or a
// streamed string's "?".
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Interface guards.
var (
	_ message.Subscriber = (*Subscriber)(nil)
	_ goredis.Hook       = fieldBound{}
	_ net.Conn           = (*boundedConn)(nil)
)
