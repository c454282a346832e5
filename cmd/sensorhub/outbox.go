package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/health"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubfx"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// healthChecksGroup is the fx value group of extra health checks that the
// health server adds to its own.
const healthChecksGroup = "health.checks"

// outboxConfig is the events part of the configuration (README: Events).
type outboxConfig struct {
	stream       string
	retention    time.Duration
	pollInterval time.Duration
	thresholds   []threshold.Rule
	// crashAfterCommits is a fault hook for tests only: the process kills
	// itself with SIGKILL right after its Nth committed write, before the
	// messages are acked. 0 (the default) disables it.
	crashAfterCommits int
}

func loadOutboxConfig(e *env) outboxConfig {
	c := outboxConfig{
		stream:       e.name("SENSORHUB_EVENTS_STREAM", sensorhub.DefaultEventsStream),
		retention:    e.duration("SENSORHUB_OUTBOX_RETENTION", outbox.DefaultRetention),
		pollInterval: e.duration("SENSORHUB_OUTBOX_POLL_INTERVAL", outbox.DefaultPollInterval),
	}
	rules, err := threshold.Parse(e.str("SENSORHUB_THRESHOLDS", ""))
	if err != nil {
		e.fail("SENSORHUB_THRESHOLDS", "%v", err)
	}
	c.thresholds = rules
	if e.getenv("SENSORHUB_TEST_CRASH_AFTER_COMMITS") != "" {
		c.crashAfterCommits = e.positive("SENSORHUB_TEST_CRASH_AFTER_COMMITS", 0)
	}
	return c
}

// outboxModule forwards the events the Postgres sink writes to the events
// stream, applies the threshold rules to the sensor types, exposes the
// forwarder (*outbox.Forwarder, whose Stats feed metrics) and its health
// check (group "health.checks"), and installs the test-only crash hook.
var outboxModule = fx.Options(
	fx.Provide(newForwarder),
	fx.Provide(fx.Annotate(outboxCheck, fx.ResultTags(`group:"`+healthChecksGroup+`"`))),
	fx.Invoke(func(*outbox.Forwarder) {}),
	fx.Decorate(fx.Annotate(applyThresholds,
		fx.ParamTags(``, ``, `group:"`+sensorhubfx.Group+`"`),
		fx.ResultTags(`group:"`+sensorhubfx.Group+`"`))),
	fx.Decorate(crashAfterCommits),
)

// newForwarder runs the outbox forwarder with the application. Its
// publisher has a Redis client of its own, closed after the forwarder
// stopped.
func newForwarder(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, logger *slog.Logger) (*outbox.Forwarder, error) {
	pub, err := redis.NewPublisher(goredis.NewClient(cfg.redis), logger)
	if err != nil {
		return nil, err
	}
	fwd, err := outbox.NewForwarder(outbox.Config{
		DB:           pool,
		Publisher:    pub,
		Stream:       cfg.outbox.stream,
		Retention:    cfg.outbox.retention,
		PollInterval: cfg.outbox.pollInterval,
		Logger:       logger,
	})
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	lc.Append(fx.StopHook(pub.Close))
	lc.Append(fx.StartStopHook(fwd.Start, fwd.Stop))
	return fwd, nil
}

func outboxCheck(fwd *outbox.Forwarder) health.Check {
	return health.Check{Name: "outbox", Func: fwd.Check}
}

// applyThresholds wraps the sensor types with the threshold rules, and
// fails start-up for a rule that names no registered type.
func applyThresholds(cfg config, logger *slog.Logger, types []sensorhub.SensorType) ([]sensorhub.SensorType, error) {
	if len(cfg.outbox.thresholds) == 0 {
		return types, nil
	}
	eval := threshold.New(cfg.outbox.thresholds)
	names := make([]string, 0, len(types))
	for _, t := range types {
		names = append(names, t.Name)
	}
	var errs []error
	for _, s := range eval.Sensors() {
		if !slices.Contains(names, s) && !slices.Contains(names, sensorhub.CatchAll) {
			errs = append(errs, fmt.Errorf("SENSORHUB_THRESHOLDS: sensor type %q is not registered", s))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	logger.Info("threshold rules active", "rules", len(cfg.outbox.thresholds))
	return eval.WrapAll(types), nil
}

// crashAfterCommits installs the test-only fault hook of
// SENSORHUB_TEST_CRASH_AFTER_COMMITS around the hub's sink. It decorates
// the hub's configuration rather than the sensorhub.Sink, which fx lets
// only one decorator (the metrics) wrap.
func crashAfterCommits(cfg config, hub sensorhub.Config, logger *slog.Logger) (sensorhub.Config, error) {
	if cfg.outbox.crashAfterCommits == 0 {
		return hub, nil
	}
	w, ok := hub.Sink.(sensorhub.BatchWriter)
	if !ok {
		return sensorhub.Config{}, errors.New("SENSORHUB_TEST_CRASH_AFTER_COMMITS: the sink does not group-commit")
	}
	logger.Warn("test fault hook armed: SIGKILL after a commit", "commits", cfg.outbox.crashAfterCommits)
	hub.Sink = &crashingSink{BatchWriter: w, after: int64(cfg.outbox.crashAfterCommits)}
	return hub, nil
}

// crashingSink kills the process right after its after-th successful
// write: committed, not yet acked, events not yet forwarded.
type crashingSink struct {
	sensorhub.BatchWriter
	after   int64
	commits atomic.Int64
}

func (s *crashingSink) Write(ctx context.Context, b sensorhub.Batch) (sensorhub.WriteResult, error) {
	res, err := s.BatchWriter.Write(ctx, b)
	s.committed(err)
	return res, err
}

func (s *crashingSink) WriteBatches(ctx context.Context, bs []sensorhub.Batch) ([]sensorhub.WriteResult, error) {
	res, err := s.BatchWriter.WriteBatches(ctx, bs)
	s.committed(err)
	return res, err
}

func (s *crashingSink) committed(err error) {
	if err == nil && s.commits.Add(1) == s.after {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
