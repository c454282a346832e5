package sensorhub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/sensorhub/sensorhub/internal/watermilllog"
)

// Wire names. They are part of the contract with producers and operators:
// do not rename them.
const (
	// DefaultStream is the Redis stream readings arrive on.
	DefaultStream = "sensor_stream"
	// PoisonSuffix is appended to the stream name to name the poison stream.
	PoisonSuffix = ".poison"
)

// Metadata keys set on poisoned messages; the Redis transport writes them as
// fields of the poison stream entry. Part of the wire contract.
const (
	// MetadataReason holds the reason code, one of the Reason* constants.
	MetadataReason = "reason"
	// MetadataError holds the error for humans.
	MetadataError = "error"
	// MetadataEntryID holds the id of the source stream entry.
	MetadataEntryID = "entry_id"
	// MetadataPoisonedAt holds the time the message was poisoned, RFC 3339.
	MetadataPoisonedAt = "poisoned_at"
	// MetadataInvalidEntry is set by a transport that could not find a
	// payload in what it received; its value says why. The hub poisons
	// such messages with ReasonUnsupportedEntry.
	MetadataInvalidEntry = "invalid_entry"
)

// Hub defaults, used where a Config field is zero.
const (
	DefaultHandlerTimeout  = 30 * time.Second
	DefaultCloseTimeout    = 30 * time.Second
	DefaultMaxRetries      = 5
	DefaultRetryInterval   = 200 * time.Millisecond
	DefaultMaxRetryBackoff = 5 * time.Second
)

// Config configures a Hub. Subscriber, Publisher and Sink are required; every
// other zero field takes the default its comment names.
type Config struct {
	// Subscriber delivers raw messages from Stream. Required.
	Subscriber message.Subscriber
	// Publisher receives poisoned messages on PoisonStream. Required.
	Publisher message.Publisher
	// Sink stores readings. Required. When it is a BatchWriter, the hub
	// commits the readings of concurrent messages together (see BatchConfig).
	Sink Sink
	// Batch configures group commit for a BatchWriter sink.
	Batch BatchConfig
	// Stream is the topic readings are consumed from. Default DefaultStream.
	Stream string
	// PoisonStream is the topic of the poison queue. Default Stream +
	// PoisonSuffix.
	PoisonStream string
	// Decoder controls decoding and validation of messages.
	Decoder DecoderConfig
	// HandlerTimeout bounds one attempt at processing a message.
	// Default DefaultHandlerTimeout (30 s).
	HandlerTimeout time.Duration
	// MaxRetries is how often a transient error is retried in process before
	// the message is nacked and redelivered later, which counts against the
	// subscriber's redelivery limit. Default DefaultMaxRetries. A transient
	// error of the sink (the database is unreachable) is the exception: it
	// is retried in process, every MaxRetryBackoff at the most, for as long
	// as it lasts, so that an outage of any length never poisons a valid
	// reading. The subscriber keeps such messages claimed meanwhile, and the
	// in-flight limit bounds them.
	MaxRetries int
	// RetryInterval is the first backoff between retries; it doubles up to
	// MaxRetryBackoff. Default DefaultRetryInterval (200 ms).
	RetryInterval time.Duration
	// MaxRetryBackoff caps the backoff. Default DefaultMaxRetryBackoff (5 s).
	MaxRetryBackoff time.Duration
	// CloseTimeout bounds how long Stop waits for messages in flight.
	// Default DefaultCloseTimeout (30 s).
	CloseTimeout time.Duration
	// Logger receives the hub's and Watermill's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.PoisonStream = cmp.Or(c.PoisonStream, c.Stream+PoisonSuffix)
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, DefaultHandlerTimeout)
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	c.RetryInterval = cmp.Or(c.RetryInterval, DefaultRetryInterval)
	c.MaxRetryBackoff = cmp.Or(c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	c.CloseTimeout = cmp.Or(c.CloseTimeout, DefaultCloseTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Subscriber == nil {
		errs = append(errs, errors.New("subscriber is required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("publisher is required"))
	}
	if c.Sink == nil {
		errs = append(errs, errors.New("sink is required"))
	}
	if c.Stream != "" && c.Stream == c.PoisonStream {
		errs = append(errs, fmt.Errorf("poison stream must differ from stream %q", c.Stream))
	}
	for name, d := range map[string]time.Duration{"handler timeout": c.HandlerTimeout, "retry interval": c.RetryInterval,
		"max retry backoff": c.MaxRetryBackoff, "close timeout": c.CloseTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("max retries must not be negative, got %d", c.MaxRetries))
	}
	errs = append(errs, c.Decoder.Validate(), c.Batch.Validate())
	return errors.Join(errs...)
}

// Stats counts what a hub has done since it was created.
type Stats struct {
	// Received counts messages taken from the subscriber, including
	// redeliveries.
	Received uint64
	// Stored, Duplicates, Conflicts and Replaced add up the sink's
	// WriteResults.
	Stored, Duplicates, Conflicts, Replaced uint64
	// Retried counts in-process retries after transient errors.
	Retried uint64
	// Poisoned counts messages sent to the poison queue, by reason code.
	Poisoned map[string]uint64
}

// ErrStopped is returned by Err after the router stopped without Stop
// being called, for example because the subscriber closed.
var ErrStopped = errors.New("sensorhub: router stopped unexpectedly")

// Hub consumes raw messages, validates and routes each reading to the
// handler of its sensor type, and stores the result through a Sink. Its
// sensor types are fixed by New; a hub runs once.
type Hub struct {
	cfg     Config
	decoder *decoder
	sink    Sink
	batcher *batcher // nil without group commit
	// active counts the messages being processed, for the batcher.
	active atomic.Int64
	router *message.Router
	log    *slog.Logger
	// types is never changed after New, so messages read it without a lock.
	types map[string]SensorType

	// started is set by the first Start or Stop: a hub runs at most once.
	started  atomic.Bool
	running  atomic.Bool // set by Start, read by Check
	stopping atomic.Bool
	stopped  chan struct{} // closed by Stop; ends retries

	lastOutageWarn atomic.Int64 // UnixNano of the last warnOutage record
	stopOnce       sync.Once
	done           chan struct{}
	err            error

	received, stored, duplicates, conflicts, replaced, retried atomic.Uint64
	poisonMu                                                   sync.Mutex
	poisoned                                                   map[string]uint64
}

// New returns a hub for cfg that handles the sensor types given, at least
// one. It fails for an invalid configuration, an invalid sensor type (see
// SensorType.Validate) or a name given twice, reporting every problem at
// once. The set of types is fixed for the hub's life.
func New(cfg Config, types ...SensorType) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sensorhub: invalid config: %w", err)
	}
	registry, err := newRegistry(types)
	if err != nil {
		return nil, fmt.Errorf("sensorhub: sensor types: %w", err)
	}
	cfg.setDefaults()
	dec, err := newDecoder(cfg.Decoder)
	if err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:      cfg,
		decoder:  dec,
		log:      cfg.Logger,
		types:    registry,
		stopped:  make(chan struct{}),
		done:     make(chan struct{}),
		poisoned: make(map[string]uint64),
	}
	h.sink = cfg.Sink
	if w, ok := cfg.Sink.(BatchWriter); ok && !cfg.Batch.Disabled {
		if h.batcher, err = newBatcher(w, cfg.Batch, func() int { return int(h.active.Load()) }); err != nil {
			return nil, err
		}
		h.sink = h.batcher
	}
	if h.router, err = h.newRouter(); err != nil {
		return nil, err
	}
	return h, nil
}

// newRegistry validates types and maps them by name.
func newRegistry(types []SensorType) (map[string]SensorType, error) {
	if len(types) == 0 {
		return nil, errors.New("none given")
	}
	var errs []error
	registry := make(map[string]SensorType, len(types))
	for _, t := range types {
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, ok := registry[t.Name]; ok {
			errs = append(errs, fmt.Errorf("sensor type %q given twice", t.Name))
			continue
		}
		// A copy, so that changing the caller's map cannot race with messages.
		t.Units = maps.Clone(t.Units)
		registry[t.Name] = t
	}
	return registry, errors.Join(errs...)
}

// SensorTypes returns the names of the hub's sensor types, sorted.
func (h *Hub) SensorTypes() []string {
	return slices.Sorted(maps.Keys(h.types))
}

// Process decodes one raw message, runs each reading through the handler of
// its sensor type and writes the result, readings and events, to the sink as
// one batch. It is what the hub does for every message it consumes, exposed
// for tests and for transports of the caller's own. An error marked
// permanent (see IsPermanent) means the message can never be stored.
func (h *Hub) Process(ctx context.Context, payload []byte) (WriteResult, error) {
	batch, err := h.prepare(ctx, payload)
	if err != nil {
		return WriteResult{}, err
	}
	if batch.Empty() {
		return WriteResult{}, nil
	}
	res, err := h.sink.Write(ctx, batch)
	return h.count(batch, res, err)
}

// prepare decodes one raw message and runs each reading through the handler
// of its sensor type: the batch Process writes.
func (h *Hub) prepare(ctx context.Context, payload []byte) (Batch, error) {
	inputs, err := h.decoder.Decode(payload)
	if err != nil {
		return Batch{}, err
	}
	batch := Batch{Readings: make([]Reading, 0, len(inputs))}
	for _, in := range inputs {
		out, err := h.handle(ctx, in)
		if err != nil {
			if inErr, ok := errors.AsType[*InputError](err); ok {
				inErr.Index = in.Index
			} else if in.Index >= 0 {
				err = fmt.Errorf("reading %d: %w", in.Index, err)
			}
			return Batch{}, err
		}
		batch.Readings = append(batch.Readings, out.Readings...)
		batch.Events = append(batch.Events, out.Events...)
	}
	return batch, nil
}

// count adds the sink's result for batch to the hub's counters, or marks
// its error as the sink's outage.
func (h *Hub) count(batch Batch, res WriteResult, err error) (WriteResult, error) {
	if err != nil {
		return WriteResult{}, &outageError{fmt.Errorf("sensorhub: write %d readings and %d events: %w", len(batch.Readings), len(batch.Events), err)}
	}
	h.stored.Add(uint64(res.Stored))
	h.duplicates.Add(uint64(res.Duplicates))
	h.conflicts.Add(uint64(res.Conflicts))
	h.replaced.Add(uint64(res.Replaced))
	return res, nil
}

// handle validates one input against its sensor type and runs its handler.
func (h *Hub) handle(ctx context.Context, in input) (_ Batch, err error) {
	t, ok := h.lookup(in.Sensor)
	if !ok {
		return Batch{}, &InputError{Reason: ReasonUnknownSensor, Index: -1, Field: "sensor",
			Err: fmt.Errorf("no handler registered for sensor type %q", in.Sensor)}
	}
	value, unit, err := t.normalize(in.Value, in.Unit)
	if err != nil {
		return Batch{}, err
	}
	r := Reading{Station: in.Station, Sensor: in.Sensor, Time: in.Time, Value: value, Unit: unit, ID: in.ID}
	if t.Handle == nil {
		return Batch{Readings: []Reading{r}}, nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(ReasonHandlerPanic, fmt.Errorf("sensor type %q: handler panicked: %v", in.Sensor, p))
		}
	}()
	out, err := t.Handle(ctx, r)
	if err != nil {
		return Batch{}, fmt.Errorf("sensor type %q: %w", in.Sensor, err)
	}
	for i, e := range out.Events {
		if err := e.Validate(); err != nil {
			return Batch{}, Permanent(ReasonInvalidEvent, fmt.Errorf("sensor type %q: event %d: %w", in.Sensor, i, err))
		}
	}
	return out, nil
}

func (h *Hub) lookup(name string) (SensorType, bool) {
	if t, ok := h.types[name]; ok {
		return t, true
	}
	t, ok := h.types[CatchAll]
	return t, ok
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	h.poisonMu.Lock()
	poisoned := maps.Clone(h.poisoned)
	h.poisonMu.Unlock()
	return Stats{
		Received:   h.received.Load(),
		Stored:     h.stored.Load(),
		Duplicates: h.duplicates.Load(),
		Conflicts:  h.conflicts.Load(),
		Replaced:   h.replaced.Load(),
		Retried:    h.retried.Load(),
		Poisoned:   poisoned,
	}
}

// Start starts consuming in the background and returns once the router runs.
// ctx bounds only the start-up; the hub runs until Stop. A hub starts once:
// Start after Start or Stop returns ErrStarted.
func (h *Hub) Start(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	h.running.Store(true)
	go func() {
		err := h.router.Run(context.WithoutCancel(ctx))
		if err == nil && !h.stopping.Load() {
			err = ErrStopped
		}
		if err != nil {
			h.log.Error("sensorhub: router stopped", "error", err)
		}
		h.err = err
		close(h.done)
	}()
	select {
	case <-h.router.Running():
		h.log.Info("sensorhub: hub started", "stream", h.cfg.Stream, "sensor_types", len(h.types))
		return nil
	case <-h.done:
		return fmt.Errorf("sensorhub: start: %w", h.err)
	case <-ctx.Done():
		_ = h.router.Close()
		return fmt.Errorf("sensorhub: start: %w", ctx.Err())
	}
}

// Stop stops consuming, waits for messages in flight up to CloseTimeout or
// until ctx ends, and closes the subscriber. Messages not finished are not
// acked and will be redelivered.
func (h *Hub) Stop(ctx context.Context) error {
	h.stopping.Store(true)
	h.stopOnce.Do(func() { close(h.stopped) })
	if h.started.CompareAndSwap(false, true) { // a stopped hub never starts
		close(h.done)
		if h.batcher != nil {
			_ = h.batcher.Close()
		}
		return nil
	}
	closed := make(chan error, 1)
	go func() { closed <- h.router.Close() }()
	select {
	case err := <-closed:
		if h.batcher != nil {
			_ = h.batcher.Close()
		}
		if err != nil {
			return fmt.Errorf("sensorhub: stop: %w", err)
		}
		h.log.Info("sensorhub: hub stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sensorhub: stop: %w", ctx.Err())
	}
}

// Run starts the hub and blocks until ctx is cancelled, then stops it. It
// returns ErrStopped (wrapped) if the router stopped by itself.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.CloseTimeout+5*time.Second)
		defer cancel()
		return h.Stop(stopCtx)
	case <-h.done:
		return h.err
	}
}

// Done is closed when the router has stopped, by Stop or by itself.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Err returns why the router stopped once Done is closed: nil after Stop,
// ErrStopped or a router error otherwise.
func (h *Hub) Err() error {
	select {
	case <-h.done:
		return h.err
	default:
		return nil
	}
}

// Check reports whether the hub is consuming, for health checks.
func (h *Hub) Check(context.Context) error {
	switch {
	case !h.running.Load():
		return errors.New("not started")
	case h.Err() != nil:
		return h.Err()
	case h.stopping.Load():
		return errors.New("stopped")
	case !h.router.IsRunning():
		return errors.New("router not running")
	}
	return nil
}

// newRouter builds the Watermill router: Recoverer → CorrelationID →
// bundles (see unbundle) → PoisonQueue → poison annotation → Retry →
// Timeout → handler.
func (h *Hub) newRouter() (*message.Router, error) {
	logger := watermilllog.New(h.log)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: h.cfg.CloseTimeout}, logger)
	if err != nil {
		return nil, fmt.Errorf("sensorhub: new router: %w", err)
	}
	poison, err := middleware.PoisonQueueWithFilter(poisonCounter{h}, h.cfg.PoisonStream, IsPermanent)
	if err != nil {
		return nil, fmt.Errorf("sensorhub: poison queue: %w", err)
	}
	router.AddMiddleware(
		middleware.Recoverer,
		middleware.CorrelationID,
		h.unbundle,
		poison,
		h.track,
		h.annotatePoisoned,
		h.retryTransient,
		middleware.Timeout(h.cfg.HandlerTimeout),
	)
	router.AddConsumerHandler("sensorhub", h.cfg.Stream, h.cfg.Subscriber, h.consume)
	return router, nil
}

// retryTransient runs a message and retries it up to MaxRetries times
// while it fails with a transient error, waiting RetryInterval, then twice
// as long each time up to MaxRetryBackoff, each wait randomised by ±20 %.
// While the sink is unreachable it retries without a limit, until the hub
// stops: nacking would spend the message's redelivery budget, and a long
// outage would then poison valid readings. At the stop it gives up and the
// router nacks the message while its subscriber stops; a subscriber must
// not count that nack against the budget (the Redis transport's does not,
// see its package doc), so that restarts during an outage poison nothing.
//
// It replaces Watermill's Retry middleware, whose callbacks advance the
// backoff (watermill#690): with ShouldRetry and OnRetryHook set, each wait
// was eight times the last instead of twice. Most messages succeed at once,
// so the backoff state is made only after a failure.
func (h *Hub) retryTransient(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context() // the timeout middleware inside replaces it
		produced, err := next(msg)
		if err == nil || IsPermanent(err) {
			return produced, err
		}
		wait := h.newRetryWait()
		for retry := 1; retry <= h.cfg.MaxRetries || isOutage(err); retry++ {
			h.log.DebugContext(ctx, "sensorhub: transient error, retrying",
				"entry_id", msg.Metadata.Get(MetadataEntryID), "retry", retry, "err", err)
			if isOutage(err) {
				h.warnOutage(ctx, err)
			}
			if !wait.next(ctx, h.stopped) {
				return produced, err
			}
			h.retried.Add(1)
			msg.SetContext(ctx)
			if produced, err = next(msg); err == nil || IsPermanent(err) {
				return produced, err
			}
		}
		return produced, err
	}
}

// outageWarnInterval is how often, at most, the hub logs that the sink is
// unreachable while messages wait for it.
const outageWarnInterval = 10 * time.Second

// warnOutage logs a Warn record that the sink is unreachable, once per
// outageWarnInterval however many messages wait, so that an outage shows in
// the logs without flooding them.
func (h *Hub) warnOutage(ctx context.Context, err error) {
	now := time.Now().UnixNano()
	last := h.lastOutageWarn.Load()
	if now-last < int64(outageWarnInterval) || !h.lastOutageWarn.CompareAndSwap(last, now) {
		return
	}
	h.log.WarnContext(ctx, "sensorhub: sink unavailable, messages wait and are retried",
		"in_flight", h.active.Load(), "error", err)
}

// consume is the router's handler for one message.
func (h *Hub) consume(msg *message.Message) error {
	if why := msg.Metadata.Get(MetadataInvalidEntry); why != "" {
		return &InputError{Reason: ReasonUnsupportedEntry, Index: -1, Err: errors.New(why)}
	}
	res, err := h.Process(msg.Context(), msg.Payload)
	// Checked first: the record's arguments would otherwise be built, and
	// boxed, for every message whether or not Debug is on.
	if err == nil && h.log.Enabled(msg.Context(), slog.LevelDebug) {
		h.log.Debug("sensorhub: message processed", "message_id", msg.UUID, "entry_id", msg.Metadata.Get(MetadataEntryID),
			"stored", res.Stored, "duplicates", res.Duplicates, "conflicts", res.Conflicts)
	}
	return err
}

// track counts each delivery once, however often it is retried, and the
// messages being processed, for the batcher.
func (h *Hub) track(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		h.received.Add(1)
		h.active.Add(1)
		defer h.active.Add(-1)
		return next(msg)
	}
}

// annotatePoisoned runs just inside the poison queue middleware: for a
// permanent error it records the reason in the message metadata that the
// poison queue publishes, and logs it, where it is handled.
func (h *Hub) annotatePoisoned(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		// The timeout middleware leaves a cancelled context on msg, and the
		// poison queue publishes with msg's context.
		ctx := msg.Context()
		produced, err := next(msg)
		msg.SetContext(ctx)
		if err == nil || !IsPermanent(err) {
			return produced, err
		}
		h.annotatePoison(msg, err)
		return produced, err
	}
}

// annotatePoison records why msg is poisoned in the metadata the poison
// queue publishes, and logs it.
func (h *Hub) annotatePoison(msg *message.Message, err error) {
	reason := ReasonOf(err)
	msg.Metadata.Set(MetadataReason, reason)
	msg.Metadata.Set(MetadataError, err.Error())
	msg.Metadata.Set(MetadataPoisonedAt, time.Now().UTC().Format(time.RFC3339Nano))
	h.log.Warn("sensorhub: message poisoned", "reason", reason, "error", err,
		"message_id", msg.UUID, "entry_id", msg.Metadata.Get(MetadataEntryID))
}

// poisonCounter publishes to the poison queue and counts, by reason, what
// was published: a message whose publish fails is nacked and counted when it
// finally lands.
type poisonCounter struct{ h *Hub }

func (p poisonCounter) Publish(topic string, msgs ...*message.Message) error {
	if err := p.h.cfg.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.h.poisonMu.Lock()
	defer p.h.poisonMu.Unlock()
	for _, m := range msgs {
		p.h.poisoned[m.Metadata.Get(MetadataReason)]++
	}
	return nil
}

func (p poisonCounter) Close() error { return nil }
