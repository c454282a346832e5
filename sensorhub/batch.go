package sensorhub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// BatchWriter is a Sink that can store the batches of several messages in
// one transaction and still report per batch: what group commit needs.
// WriteBatches returns one WriteResult per batch, in order, or an error for
// all of them: like Write it commits all or nothing.
type BatchWriter interface {
	Sink
	WriteBatches(ctx context.Context, batches []Batch) ([]WriteResult, error)
}

// Group commit defaults, used where a BatchConfig field is zero.
const (
	DefaultBatchMaxReadings = 5000
	DefaultBatchMaxWait     = 5 * time.Millisecond
	DefaultBatchWriters     = 1
	DefaultBatchShards      = 2
	DefaultBatchShardFrom   = 500
	DefaultBatchTimeout     = 30 * time.Second
	DefaultBatchBackoff     = 100 * time.Millisecond
	DefaultBatchMaxBackoff  = 2 * time.Second
)

// errBatcherClosed fails the writes a closed batcher no longer takes.
var errBatcherClosed = errors.New("sensorhub: batcher closed")

// BatchConfig configures group commit. The zero value takes the defaults its
// comments name.
type BatchConfig struct {
	// MaxReadings flushes a group once it holds this many readings (a
	// bundle's messages join a group together, and may take it past
	// MaxReadings). Default DefaultBatchMaxReadings (5000).
	MaxReadings int
	// MaxWait flushes a group this long after its first write arrived,
	// however small it is. Default DefaultBatchMaxWait (5 ms).
	MaxWait time.Duration
	// Writers bounds the flushes running at once; while all are busy,
	// groups grow. Default DefaultBatchWriters (1): the Postgres sink's
	// commits take the advisory locks of their stations, so two writers of
	// the same stations commit one after the other anyway, while the
	// waiting one holds a group that could have grown (measured on a
	// 60,000-reading drain of 5 stations: 20,400 → 25,900 readings/s
	// plain, 7,000 → 9,700 with quality control and derived quantities).
	Writers int
	// Shards splits the writing of each group into up to this many
	// transactions at once, each holding the writes whose first reading's
	// station hashes to it: commits of different stations then run side
	// by side instead of one after the other under the Postgres sink's
	// station locks (a write of several stations still locks each of
	// them, waiting where another shard holds one). A write, and so each
	// station's writes in one group, stays in one transaction. Default
	// DefaultBatchShards (2); 1 writes a group in one transaction.
	Shards int
	// ShardFrom is the size, in readings, from which a group is split
	// into Shards; a smaller group is written in one transaction. A
	// second transaction costs its own round trips, commit and wake-ups,
	// which a small group's half does not earn back: live at 10,000
	// readings/s, where a group holds about 50 readings, the service used
	// 44 µs of CPU a reading with every group split in two and 36 µs
	// with none, at the same latency. Default DefaultBatchShardFrom (500);
	// 1 splits every group.
	ShardFrom int
	// Timeout bounds one flush. Default DefaultBatchTimeout (30 s).
	Timeout time.Duration
	// Backoff is the pause before the next flush after one failed with a
	// transient error; it doubles with each further failure up to
	// MaxBackoff and ends with the next commit. While the database is
	// unreachable, the retries of every message in flight then wait and
	// go out together, one connection attempt per pause, instead of each
	// making its own. Default DefaultBatchBackoff (100 ms).
	Backoff time.Duration
	// MaxBackoff caps Backoff's doubling, and so how long after the
	// database is back the first flush may wait. Default
	// DefaultBatchMaxBackoff (2 s).
	MaxBackoff time.Duration
	// Disabled makes every Write a transaction of its own.
	Disabled bool
}

func (c *BatchConfig) setDefaults() {
	c.MaxReadings = cmp.Or(c.MaxReadings, DefaultBatchMaxReadings)
	c.MaxWait = cmp.Or(c.MaxWait, DefaultBatchMaxWait)
	c.Writers = cmp.Or(c.Writers, DefaultBatchWriters)
	c.Shards = cmp.Or(c.Shards, DefaultBatchShards)
	c.ShardFrom = cmp.Or(c.ShardFrom, DefaultBatchShardFrom)
	c.Timeout = cmp.Or(c.Timeout, DefaultBatchTimeout)
	c.Backoff = cmp.Or(c.Backoff, DefaultBatchBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, DefaultBatchMaxBackoff)
}

// Validate reports every problem with the configuration at once.
func (c BatchConfig) Validate() error {
	var errs []error
	if c.MaxReadings < 0 || c.Writers < 0 || c.Shards < 0 || c.ShardFrom < 0 {
		errs = append(errs, fmt.Errorf("batch max readings, writers, shards and shard from must not be negative, got %d, %d, %d and %d", c.MaxReadings, c.Writers, c.Shards, c.ShardFrom))
	}
	if c.MaxWait < 0 || c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("batch max wait and timeout must not be negative, got %s and %s", c.MaxWait, c.Timeout))
	}
	if c.Backoff < 0 || c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("batch backoff and max backoff must not be negative, got %s and %s", c.Backoff, c.MaxBackoff))
	}
	return errors.Join(errs...)
}

// batcher is a Sink that commits the writes of concurrent callers together:
// each Write waits while its batch joins a group, and the group is written
// in one transaction when it holds MaxReadings readings, when MaxWait has
// passed since it started, or when every message in flight has joined it.
// Then every caller returns with its own share of the result, so a message
// is acked only once its readings are committed. A failed flush fails every
// write in it; one with a permanent error is retried write by write, so that
// only the culprit is poisoned. After a flush failed with a transient
// error the next one waits Backoff, doubling up to MaxBackoff, while the
// writes gather.
type batcher struct {
	cfg      BatchConfig
	writer   BatchWriter
	inFlight func() int
	// requests carries the writes of one WriteAll together, so that they
	// join one group.
	requests chan []*writeRequest
	writers  chan struct{}
	stop     chan struct{}
	done     chan struct{}
	// seed hashes stations to shards; any seed will do, as long as one
	// batcher keeps it: the station locks, not the shards, order commits.
	seed maphash.Seed

	mu       sync.Mutex
	backoff  time.Duration // the last pause; 0 after a commit
	resumeAt time.Time     // no flush starts before
}

type writeRequest struct {
	batch Batch
	reply chan writeReply // buffered: the flush never blocks on a caller gone
}

// size is what the request adds to a group's MaxReadings count; an
// event-only batch counts as one.
func (r *writeRequest) size() int { return max(len(r.batch.Readings), 1) }

// sizeOf returns what requests add to a group's MaxReadings count.
func sizeOf(requests []*writeRequest) int {
	n := 0
	for _, r := range requests {
		n += r.size()
	}
	return n
}

type writeReply struct {
	res WriteResult
	err error
}

// newBatcher returns a batcher over w. inFlight, when not nil, reports how
// many writes may still join the current group (the hub passes the number
// of messages being processed), letting a group flush as soon as all of them
// arrived instead of waiting for MaxWait. Close stops it.
func newBatcher(w BatchWriter, cfg BatchConfig, inFlight func() int) (*batcher, error) {
	if w == nil {
		return nil, errors.New("sensorhub: batcher: writer is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sensorhub: batcher: %w", err)
	}
	cfg.setDefaults()
	b := &batcher{
		cfg:      cfg,
		writer:   w,
		inFlight: inFlight,
		requests: make(chan []*writeRequest),
		writers:  make(chan struct{}, cfg.Writers),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		seed:     maphash.MakeSeed(),
	}
	go b.run()
	return b, nil
}

// Write implements Sink: it waits until the group holding batch is
// committed, or ctx ends.
func (b *batcher) Write(ctx context.Context, batch Batch) (WriteResult, error) {
	results, errs := b.WriteAll(ctx, []Batch{batch})
	return results[0], errs[0]
}

// WriteAll writes the batches of several messages, each as if by a Write of
// its own but all in one group, which may therefore hold more than
// MaxReadings: the messages of a stream read, in stream order, are not
// split between two commits, nor interleaved with another read's, so that
// a drain commits each series' readings in device-time order and the
// processors get few late ones. Each batch gets its own result or error,
// in order. It returns once every batch is answered or ctx ends.
func (b *batcher) WriteAll(ctx context.Context, batches []Batch) ([]WriteResult, []error) {
	results, errs := make([]WriteResult, len(batches)), make([]error, len(batches))
	reqs := make([]*writeRequest, len(batches))
	var joining []*writeRequest
	for i, batch := range batches {
		if !batch.Empty() {
			reqs[i] = &writeRequest{batch: batch, reply: make(chan writeReply, 1)}
			joining = append(joining, reqs[i])
		}
	}
	if len(joining) > 0 {
		var err error
		select {
		case b.requests <- joining:
		case <-ctx.Done():
			err = ctx.Err()
		case <-b.stop:
			err = errBatcherClosed
		}
		if err != nil {
			for i, req := range reqs {
				if req != nil {
					reqs[i], errs[i] = nil, err
				}
			}
		}
	}
	for i, req := range reqs {
		if req == nil {
			continue
		}
		select {
		case r := <-req.reply:
			results[i], errs[i] = r.res, r.err
		case <-ctx.Done():
			// The flush may still commit; the message is retried and its
			// readings then count as duplicates (its events are written
			// again, with their UUIDs unchanged only if the handler
			// derives them).
			errs[i] = ctx.Err()
		}
	}
	return results, errs
}

// Close stops taking writes and waits for the flushes under way.
func (b *batcher) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	return nil
}

// run gathers requests into groups and hands each to a flush. It waits for
// a free writer before it starts a group, so that while every writer is
// busy the writes queue up and the next group takes them all at once: the
// slower the database, the larger the groups.
func (b *batcher) run() {
	defer close(b.done)
	defer func() {
		for range b.cfg.Writers {
			b.writers <- struct{}{} // wait for the flushes under way
		}
	}()
	timer := time.NewTimer(0)
	<-timer.C
	for {
		select {
		case b.writers <- struct{}{}:
		case <-b.stop:
			return
		}
		var group []*writeRequest
		select {
		case group = <-b.requests:
		case <-b.stop:
			<-b.writers
			return
		}
		// After a failed flush, the group waits here while the writes
		// retried meanwhile queue up behind the first.
		if !b.pause() {
			for _, r := range group {
				r.reply <- writeReply{err: errBatcherClosed}
			}
			<-b.writers
			return
		}
		size := sizeOf(group)
		timer.Reset(b.cfg.MaxWait)
	gather:
		for size < b.cfg.MaxReadings {
			select {
			case rs := <-b.requests: // queued writes first, without waiting
				group = append(group, rs...)
				size += sizeOf(rs)
				continue
			default:
			}
			if b.allArrived(len(group)) {
				break
			}
			select {
			case rs := <-b.requests:
				group = append(group, rs...)
				size += sizeOf(rs)
			case <-timer.C:
				break gather
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		go func() {
			defer func() { <-b.writers }()
			b.flush(group)
		}()
	}
}

// pause waits out the backoff after a failed flush, if any. It reports
// false when the batcher is closed meanwhile.
func (b *batcher) pause() bool {
	b.mu.Lock()
	d := time.Until(b.resumeAt)
	b.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.stop:
		return false
	}
}

// settle sets the pause before the next flush from the outcome of the last:
// none after a commit, or after a permanent error (the database answered);
// after a transient error Backoff, or twice the last pause, up to
// MaxBackoff.
func (b *batcher) settle(transient bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !transient {
		b.backoff, b.resumeAt = 0, time.Time{}
		return
	}
	b.backoff = min(max(2*b.backoff, b.cfg.Backoff), b.cfg.MaxBackoff)
	b.resumeAt = time.Now().Add(b.backoff)
}

// allArrived reports whether no further write can join a group of n.
func (b *batcher) allArrived(n int) bool {
	return b.inFlight != nil && n >= b.inFlight()
}

// flush writes a group, a transaction per shard at once, and answers every
// request.
func (b *batcher) flush(group []*writeRequest) {
	shards := b.shard(group)
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, part := range shards {
		wg.Go(func() { errs[i] = b.flushShard(part) })
	}
	wg.Wait()
	b.settle(slices.ContainsFunc(errs, func(err error) bool { return err != nil && !IsPermanent(err) }))
}

// shard splits group by the hash of the station of each write's first
// reading, keeping the order of the writes within each shard; a group
// smaller than ShardFrom stays whole.
func (b *batcher) shard(group []*writeRequest) [][]*writeRequest {
	if b.cfg.Shards == 1 || sizeOf(group) < b.cfg.ShardFrom {
		return [][]*writeRequest{group}
	}
	shards := make([][]*writeRequest, b.cfg.Shards)
	for _, r := range group {
		k := 0
		if len(r.batch.Readings) > 0 {
			k = int(maphash.String(b.seed, r.batch.Readings[0].Station) % uint64(b.cfg.Shards))
		}
		shards[k] = append(shards[k], r)
	}
	return slices.DeleteFunc(shards, func(s []*writeRequest) bool { return len(s) == 0 })
}

// flushShard writes part of a group in one transaction, answers its
// requests, and returns the transaction's error.
func (b *batcher) flushShard(part []*writeRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	defer cancel()
	batches := make([]Batch, len(part))
	for i, r := range part {
		batches[i] = r.batch
	}
	results, err := b.writer.WriteBatches(ctx, batches)
	switch {
	case err == nil:
		for i, r := range part {
			r.reply <- writeReply{res: results[i]}
		}
	case IsPermanent(err) && len(part) > 1:
		// One reading the database rejects must not poison the messages
		// that happened to share its transaction.
		for _, r := range part {
			res, err := b.writer.Write(ctx, r.batch)
			r.reply <- writeReply{res: res, err: err}
		}
	default:
		for _, r := range part {
			r.reply <- writeReply{err: err}
		}
	}
	return err
}

var _ Sink = (*batcher)(nil)
