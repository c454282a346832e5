package main

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/health"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// healthChecksGroup is the fx value group of extra health checks that the
// health server adds to its own.
const healthChecksGroup = "health.checks"

// outboxConfig is the events part of the configuration (docs/events.md).
type outboxConfig struct {
	stream       string
	retention    time.Duration
	pollInterval time.Duration
}

func loadOutboxConfig(e *env) outboxConfig {
	c := outboxConfig{
		stream:       e.name("SENSORHUB_EVENTS_STREAM", sensorhub.DefaultEventsStream),
		retention:    e.duration("SENSORHUB_OUTBOX_RETENTION", outbox.DefaultRetention),
		pollInterval: e.duration("SENSORHUB_OUTBOX_POLL_INTERVAL", outbox.DefaultPollInterval),
	}
	return c
}

// outboxModule forwards the events the Postgres sink writes to the events
// stream, and exposes the forwarder (*outbox.Forwarder, whose Stats feed metrics) and its health
// check (group "health.checks").
var outboxModule = fx.Options(
	fx.Provide(newForwarder),
	fx.Provide(fx.Annotate(outboxCheck, fx.ResultTags(`group:"`+healthChecksGroup+`"`))),
	fx.Invoke(func(*outbox.Forwarder) {}),
)

// newForwarder runs the outbox forwarder with the application. Its
// publisher has a Redis client of its own, closed after the forwarder
// stopped.
func newForwarder(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, logger *slog.Logger) (*outbox.Forwarder, error) {
	pub, err := redis.NewPublisher(cfg.newRedisClient(), logger)
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
