package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorhub/sensorhub/internal/background"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sensorhub/sensorhub/internal/watermilllog"
	"github.com/sensorhub/sensorhub/sensorhub"
)

// DB is what the Forwarder needs from PostgreSQL; *pgxpool.Pool satisfies
// it.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Forwarder defaults, used where a Config field is zero.
const (
	DefaultRetention       = time.Minute
	DefaultPollInterval    = 100 * time.Millisecond
	DefaultCleanupInterval = 10 * time.Second
	DefaultMeasureInterval = time.Second
	DefaultMaxLag          = 5 * time.Minute
	DefaultRestartBackoff  = 2 * time.Second
)

// Config configures a Forwarder. DB and Publisher are required; every other
// zero field takes the default its comment names.
type Config struct {
	// DB holds the outbox tables. Required; never closed by the Forwarder.
	DB DB
	// Publisher receives the events, usually a Redis stream publisher
	// (sensorhub/redis.NewPublisher). Required; never closed by the
	// Forwarder.
	Publisher message.Publisher
	// Stream is the topic every event is published to. Default
	// sensorhub.DefaultEventsStream ("sensor_events").
	Stream string
	// Retention is how long forwarded events stay in the outbox table, for
	// inspection and replay by hand, before they are deleted. Unforwarded
	// events are never deleted. The outbox holds about Retention +
	// CleanupInterval of events: at 10,000 readings/s, 100 readings.stored
	// events a second of about 2 KiB each, so a day's retention would be
	// some 8 million rows and 18 GB. Default DefaultRetention (1 min).
	Retention time.Duration
	// PollInterval is how often an idle forwarder looks for new events:
	// the longest an event waits after its commit. Default
	// DefaultPollInterval (100 ms).
	PollInterval time.Duration
	// CleanupInterval is how often forwarded events older than Retention
	// are deleted. Default DefaultCleanupInterval (10 s).
	CleanupInterval time.Duration
	// MeasureInterval is how often Stats' Lag and Pending are measured.
	// Default DefaultMeasureInterval (1 s).
	MeasureInterval time.Duration
	// MaxLag is the lag above which Check reports the forwarder unhealthy.
	// Default DefaultMaxLag (5 min).
	MaxLag time.Duration
	// Logger receives lifecycle and error logs, and Watermill's. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	c.Stream = cmp.Or(c.Stream, sensorhub.DefaultEventsStream)
	c.Retention = cmp.Or(c.Retention, DefaultRetention)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.CleanupInterval = cmp.Or(c.CleanupInterval, DefaultCleanupInterval)
	c.MeasureInterval = cmp.Or(c.MeasureInterval, DefaultMeasureInterval)
	c.MaxLag = cmp.Or(c.MaxLag, DefaultMaxLag)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("outbox: Config.DB is nil"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("outbox: Config.Publisher is nil"))
	}
	for name, d := range map[string]time.Duration{"retention": c.Retention, "poll interval": c.PollInterval,
		"cleanup interval": c.CleanupInterval, "measure interval": c.MeasureInterval, "max lag": c.MaxLag} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("outbox: %s must not be negative, got %s", name, d))
		}
	}
	return errors.Join(errs...)
}

// Stats is a snapshot of a Forwarder's work.
type Stats struct {
	// Forwarded counts events published to the stream since New. An event
	// published again after a crash counts again.
	Forwarded uint64
	// Failed counts failed publish attempts; each is retried.
	Failed uint64
	// Pending counts committed events not yet forwarded, at MeasuredAt.
	Pending int64
	// Lag is the age of the oldest of them at MeasuredAt, zero when none:
	// the outbox lag.
	Lag time.Duration
	// MeasuredAt is when Pending and Lag were measured; zero before the
	// first measurement succeeded.
	MeasuredAt time.Time
	// Running reports whether events are being forwarded.
	Running bool
}

// Forwarder moves committed events from the outbox to Config.Stream, one
// at a time in the order of their transactions (and within one, in insert
// order), at least once: an event published just before a crash is
// published again after it. Replicas may each run one; they take turns.
// It keeps forwarding through database and Redis outages, retrying.
type Forwarder struct {
	cfg Config
	log *slog.Logger

	forwarded, failed atomic.Uint64
	running           atomic.Bool

	mu       sync.Mutex
	measured Stats // Pending, Lag, MeasuredAt
	lastErr  error // why forwarding or measuring last failed, nil once it works

	runner background.Runner
}

// NewForwarder returns a Forwarder for cfg. Start starts it.
func NewForwarder(cfg Config) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Forwarder{cfg: cfg, log: cfg.Logger}, nil
}

// Start forwards, measures and cleans up in the background and returns at
// once, even while the database is unreachable: forwarding begins when it
// is. Stop stops it. A Forwarder starts once.
func (f *Forwarder) Start(ctx context.Context) error {
	if err := f.runner.Start(ctx, f.forwardLoop, f.maintainLoop); err != nil {
		return fmt.Errorf("outbox: forwarder: %w", err)
	}
	f.log.Info("outbox: forwarder started", "stream", f.cfg.Stream, "retention", f.cfg.Retention)
	return nil
}

// Stop stops forwarding and waits for the event in flight, or until ctx
// ends. Events not yet forwarded stay in the outbox for the next start.
func (f *Forwarder) Stop(ctx context.Context) error {
	if err := f.runner.Stop(ctx); err != nil {
		return fmt.Errorf("outbox: stop: %w", err)
	}
	f.log.Info("outbox: forwarder stopped")
	return nil
}

// Stats returns a snapshot of the counters and of the last measurement.
func (f *Forwarder) Stats() Stats {
	f.mu.Lock()
	s := f.measured
	f.mu.Unlock()
	s.Forwarded, s.Failed, s.Running = f.forwarded.Load(), f.failed.Load(), f.running.Load()
	return s
}

// Check reports whether the forwarder is healthy, for health checks: it
// must be running, its last measurement must have succeeded and the lag
// must not exceed MaxLag.
func (f *Forwarder) Check(context.Context) error {
	f.mu.Lock()
	lastErr := f.lastErr
	f.mu.Unlock()
	s := f.Stats()
	switch {
	case !s.Running && lastErr != nil:
		return fmt.Errorf("not forwarding: %w", lastErr)
	case !s.Running:
		return errors.New("not forwarding")
	case lastErr != nil:
		return lastErr
	case s.Lag > f.cfg.MaxLag:
		return fmt.Errorf("outbox lag %s exceeds %s (%d events pending)", s.Lag.Round(time.Second), f.cfg.MaxLag, s.Pending)
	}
	return nil
}

// forwardLoop runs Watermill forwarders until ctx ends, a new one after a
// pause whenever one stops by itself. (One that cannot subscribe, while the
// database is down, keeps trying: see retryingSubscriber.)
func (f *Forwarder) forwardLoop(ctx context.Context) {
	for {
		err := f.forward(ctx)
		if ctx.Err() != nil {
			return
		}
		f.setErr(err)
		f.log.Warn("outbox: forwarder stopped, restarting", "error", err, "backoff", DefaultRestartBackoff)
		select {
		case <-time.After(DefaultRestartBackoff):
		case <-ctx.Done():
			return
		}
	}
}

// forward runs one Watermill forwarder from the outbox to the stream until
// ctx ends or it fails.
func (f *Forwarder) forward(ctx context.Context) error {
	logger := quietOnStop{watermilllog.New(f.log), ctx}
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(f.cfg.DB), wsql.SubscriberConfig{
		ConsumerGroup:  ConsumerGroup,
		PollInterval:   f.cfg.PollInterval,
		SchemaAdapter:  schema,
		OffsetsAdapter: offsets,
	}, logger)
	if err != nil {
		return fmt.Errorf("outbox: new subscriber: %w", err)
	}
	defer func() { _ = sub.Close() }()
	fwd, err := forwarder.NewForwarder(retryingSubscriber{sub, f}, streamPublisher{f}, logger, forwarder.Config{ForwarderTopic: Topic})
	if err != nil {
		return fmt.Errorf("outbox: new forwarder: %w", err)
	}
	// The router is closed when ctx ends, by a goroutine that forward waits
	// for, so that none of it outlives forward. It is closed only once it
	// runs: closing a router that is still subscribing waits its whole
	// CloseTimeout (30 s) for a handler that has not started.
	ran := make(chan struct{})
	var closer sync.WaitGroup
	closer.Go(func() {
		select {
		case <-fwd.Running():
		case <-ran:
			return
		}
		if ctx.Err() == nil {
			f.running.Store(true)
			f.setErr(nil)
		}
		select {
		case <-ctx.Done():
			_ = fwd.Close()
		case <-ran:
		}
	})
	defer f.running.Store(false)
	err = fwd.Run(ctx)
	close(ran)
	closer.Wait()
	if err != nil {
		return fmt.Errorf("outbox: forward: %w", err)
	}
	if ctx.Err() == nil {
		return errors.New("outbox: forwarder router stopped")
	}
	return nil
}

// retryingSubscriber subscribes until it succeeds or ctx ends, instead of
// failing. The outbox subscriber's Subscribe queries the database, and a
// Watermill router whose Run fails to subscribe can never be closed: its
// handler is counted as running but never started, so two of its goroutines
// wait for it forever. That happened on every restart while the database was
// down. When ctx ends first it returns a closed channel, with which the
// router stops by itself.
type retryingSubscriber struct {
	message.Subscriber
	f *Forwarder
}

func (s retryingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	for {
		msgs, err := s.Subscriber.Subscribe(ctx, topic)
		if err == nil {
			return msgs, nil
		}
		if ctx.Err() == nil {
			s.f.setErr(fmt.Errorf("outbox: subscribe: %w", err))
			s.f.log.Warn("outbox: cannot subscribe, retrying", "error", err, "backoff", DefaultRestartBackoff)
		}
		select {
		case <-time.After(DefaultRestartBackoff):
		case <-ctx.Done():
			closed := make(chan *message.Message)
			close(closed)
			return closed, nil
		}
	}
}

// quietOnStop passes Watermill's logs on, except that errors logged once
// ctx has ended go to Debug: they come from the queries that stopping
// cancels ("could not commit tx … conn closed"), not from a fault.
type quietOnStop struct {
	watermill.LoggerAdapter
	ctx context.Context
}

func (l quietOnStop) Error(msg string, err error, fields watermill.LogFields) {
	if l.ctx.Err() != nil {
		l.LoggerAdapter.Debug(msg, fields.Add(watermill.LogFields{"error": err}))
		return
	}
	l.LoggerAdapter.Error(msg, err, fields)
}

func (l quietOnStop) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietOnStop{l.LoggerAdapter.With(fields), l.ctx}
}

// streamPublisher publishes what the Watermill forwarder unwraps to the
// configured stream and counts it.
type streamPublisher struct{ f *Forwarder }

func (p streamPublisher) Publish(_ string, msgs ...*message.Message) error {
	if err := p.f.cfg.Publisher.Publish(p.f.cfg.Stream, msgs...); err != nil {
		p.f.failed.Add(1)
		return fmt.Errorf("outbox: publish to %s: %w", p.f.cfg.Stream, err)
	}
	p.f.forwarded.Add(uint64(len(msgs)))
	return nil
}

// Close does nothing: the caller owns Config.Publisher.
func (p streamPublisher) Close() error { return nil }

// maintainLoop measures the lag every MeasureInterval and deletes old
// forwarded events every CleanupInterval.
func (f *Forwarder) maintainLoop(ctx context.Context) {
	measure := time.NewTicker(f.cfg.MeasureInterval)
	defer measure.Stop()
	cleanup := time.NewTicker(f.cfg.CleanupInterval)
	defer cleanup.Stop()
	f.measure(ctx)
	for {
		select {
		case <-measure.C:
			f.measure(ctx)
		case <-cleanup.C:
			if n, err := f.Cleanup(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("outbox: cleanup failed", "error", err)
			} else if n > 0 {
				f.log.Debug("outbox: forwarded events deleted", "count", n)
			}
		case <-ctx.Done():
			return
		}
	}
}

// Outbox queries. created_at is a timestamp without time zone filled in by
// the session's zone (watermill-sql's layout), so ages are computed against
// LOCALTIMESTAMP of a session of the same pool.
//
// What the consumer group acked is read first and passed as parameters, so
// that the planner sees where it is: the events after it are found by a
// range scan of the primary key (transaction_id, "offset") that reads the
// pending events only. A join with the offsets table, or the same position
// in a subquery, hides it from the planner, which then scans the whole
// outbox: 0.3 s for 400,000 events, measured, and that every second.
const (
	ackedQuery = `SELECT last_processed_transaction_id::text, coalesce(offset_acked, -1) FROM ` + OffsetsTable + `
WHERE consumer_group = $1`

	// The events after the acked position, the same rule watermill-sql's
	// select query uses, written as one row comparison.
	measureQuery = `SELECT count(*), coalesce(extract(epoch FROM LOCALTIMESTAMP - min(created_at)), 0)::float8
FROM ` + MessagesTable + `
WHERE (transaction_id, "offset") > ($1::xid8, $2::bigint)`

	cleanupQuery = `DELETE FROM ` + MessagesTable + `
WHERE (transaction_id, "offset") <= ($1::xid8, $2::bigint)
  AND created_at < LOCALTIMESTAMP - make_interval(secs => $3)`
)

// acked returns the position the consumer group acked, as the transaction
// ID in text and the offset, or before everything when it acked nothing
// yet.
func (f *Forwarder) acked(ctx context.Context) (string, int64, error) {
	var (
		xid    string
		offset int64
	)
	err := f.cfg.DB.QueryRow(ctx, ackedQuery, ConsumerGroup).Scan(&xid, &offset)
	if errors.Is(err, pgx.ErrNoRows) {
		return "0", -1, nil
	}
	return xid, offset, err
}

func (f *Forwarder) measure(ctx context.Context) {
	var (
		pending int64
		lag     float64
	)
	xid, offset, err := f.acked(ctx)
	if err == nil {
		err = f.cfg.DB.QueryRow(ctx, measureQuery, xid, offset).Scan(&pending, &lag)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		f.setErr(fmt.Errorf("outbox: measure lag: %w", err))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.measured = Stats{Pending: pending, Lag: time.Duration(max(lag, 0) * float64(time.Second)), MeasuredAt: time.Now()}
	if f.running.Load() {
		f.lastErr = nil
	}
}

// Cleanup deletes the forwarded events older than Retention and returns
// how many. The Forwarder calls it every CleanupInterval.
func (f *Forwarder) Cleanup(ctx context.Context) (int64, error) {
	xid, offset, err := f.acked(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox: cleanup: %w", err)
	}
	tag, err := f.cfg.DB.Exec(ctx, cleanupQuery, xid, offset, f.cfg.Retention.Seconds())
	if err != nil {
		return 0, fmt.Errorf("outbox: cleanup: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (f *Forwarder) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastErr = err
}
