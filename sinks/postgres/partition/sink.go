package partition

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// retryAfter is how long Sink waits before it tries again to create a
// month's partition after a failure; meanwhile the month's readings go to
// the default partition, as they would without Sink.
const retryAfter = time.Minute

// Sink is a sensorhub.BatchWriter in front of the Postgres sink (or of any
// BatchWriter storing into readings): before a write, it gives every month
// the write's readings fall in a partition of its own (Ensure), the first
// time it sees the month, outside the write's transaction; concurrent
// writes of that month wait for it. A month it cannot create a partition
// for is no error: the readings go to the default partition, the failure
// is logged at Warn, and Sink tries again retryAfter later (the Maintainer
// moves them too). A role that may not create partitions (it does not own
// readings, as in the least-privilege layout) turns Sink off for good,
// with one Warn: then partitions are made by `sensorhub partition
// maintain`, run as the owner. Months are remembered for the life of Sink,
// so the common write costs a look-up per reading. It is safe for
// concurrent use.
type Sink struct {
	next   sensorhub.BatchWriter
	db     DB
	logger *slog.Logger

	mu       sync.Mutex
	known    map[int]bool          // months covered by a partition
	creating map[int]chan struct{} // months being created, closed when done
	failed   map[int]time.Time     // months whose Ensure failed, and when
	off      bool                  // the role may not create partitions
}

// NewSink returns a Sink writing through next, creating partitions in db.
// logger receives the Warn of a failed creation; nil means slog.Default().
func NewSink(next sensorhub.BatchWriter, db DB, logger *slog.Logger) *Sink {
	if logger == nil {
		logger = slog.Default()
	}
	return &Sink{next: next, db: db, logger: logger, known: map[int]bool{}, creating: map[int]chan struct{}{}, failed: map[int]time.Time{}}
}

// Write is WriteBatches of one batch.
func (s *Sink) Write(ctx context.Context, batch sensorhub.Batch) (sensorhub.WriteResult, error) {
	s.prepare(ctx, []sensorhub.Batch{batch})
	return s.next.Write(ctx, batch)
}

// WriteBatches makes sure the months of batches have partitions, then
// writes them through the next sink.
func (s *Sink) WriteBatches(ctx context.Context, batches []sensorhub.Batch) ([]sensorhub.WriteResult, error) {
	s.prepare(ctx, batches)
	return s.next.WriteBatches(ctx, batches)
}

// prepare creates the partitions of the months of batches that it has not
// seen before. A month another write is creating is waited for, so that
// its readings go to the new partition rather than the default one.
func (s *Sink) prepare(ctx context.Context, batches []sensorhub.Batch) {
	var (
		missing []time.Time
		waits   []chan struct{}
	)
	now := time.Now()
	s.mu.Lock()
	last := -1 // readings of a batch mostly share a month
	for _, b := range batches {
		for _, r := range b.Readings {
			k := monthKey(r.Time)
			if k == last || s.off || s.known[k] {
				last = k
				continue
			}
			last = k
			if ch, ok := s.creating[k]; ok {
				waits = append(waits, ch)
				continue
			}
			if at, ok := s.failed[k]; ok && now.Sub(at) < retryAfter {
				continue
			}
			s.creating[k] = make(chan struct{})
			missing = append(missing, monthOf(r.Time))
		}
	}
	s.mu.Unlock()
	for _, month := range missing {
		s.create(ctx, month)
	}
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// create runs Ensure for the month starting at month, which prepare
// claimed, and records the outcome.
func (s *Sink) create(ctx context.Context, month time.Time) {
	_, err := Ensure(ctx, s.db, month, month.AddDate(0, 1, 0))
	k := monthKey(month)
	denied := IsPermissionDenied(err)
	s.mu.Lock()
	if err == nil {
		s.known[k] = true
		delete(s.failed, k)
	} else {
		s.failed[k] = time.Now()
	}
	close(s.creating[k])
	delete(s.creating, k)
	firstDenial := denied && !s.off
	s.off = s.off || denied
	s.mu.Unlock()
	switch {
	case firstDenial:
		s.logger.WarnContext(ctx, "partition: this role may not create partitions (it does not own readings): readings without a partition go to the default partition; run `sensorhub partition maintain` as the owner",
			"error", err)
	case err != nil && !denied && ctx.Err() == nil:
		s.logger.WarnContext(ctx, "partition: no partition for the month, its readings go to the default partition",
			"month", month.Format("2006-01"), "error", err, "retry_after", retryAfter)
	}
}

// IsPermissionDenied reports whether err is PostgreSQL's refusal of a
// change of the partition layout to a role without the right (SQLSTATE
// 42501: not the owner of readings).
func IsPermissionDenied(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == "42501"
}

var _ sensorhub.BatchWriter = (*Sink)(nil)
