package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/health"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubfx"
	"github.com/sensorhub/sensorhub/sinks/postgres"
)

// startTimeout bounds start-up: connecting, creating the consumer group,
// binding the HTTP port.
const startTimeout = 30 * time.Second

// runService runs processor, bridge and health server until ctx ends, or
// until the hub stops by itself, which is an error: a service that no longer
// consumes must not idle on as if healthy.
func runService(ctx context.Context, cfg config, logger *slog.Logger) error {
	var hub *sensorhub.Hub
	app := fx.New(
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.StartTimeout(startTimeout),
		fx.StopTimeout(cfg.shutdownTimeout+10*time.Second),
		fx.Supply(cfg, logger),
		fx.Provide(newPool, newRedisClient, newSink, newHubConfig),
		sensorhubfx.SensorTypes(handlers.Builtin()...),
		sensorhubfx.Module,
		fx.Invoke(startBridge, startHealthServer, exitWhenHubStops),
		fx.Populate(&hub),
	)
	if err := app.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return err
	}
	exit := 0
	select {
	case <-ctx.Done():
	case sig := <-app.Wait():
		exit = sig.ExitCode
	}
	stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), app.StopTimeout())
	defer cancelStop()
	stopErr := app.Stop(stopCtx)
	if exit != 0 {
		return errors.Join(fmt.Errorf("hub stopped: %w", hub.Err()), stopErr)
	}
	return stopErr
}

func newPool(lc fx.Lifecycle, cfg config) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.databaseURL)
	if err != nil {
		return nil, errors.New("parse database URL (value not shown)")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	lc.Append(fx.StopHook(pool.Close))
	return pool, nil
}

// newRedisClient returns the client shared by the bridge, the poison
// publisher's health check and the health server. Subscriber and publisher
// get clients of their own because they close theirs.
func newRedisClient(lc fx.Lifecycle, cfg config) *goredis.Client {
	client := goredis.NewClient(cfg.redis)
	lc.Append(fx.StopHook(client.Close))
	return client
}

func newSink(pool *pgxpool.Pool, logger *slog.Logger) (sensorhub.Sink, error) {
	return postgres.New(postgres.Config{DB: pool, Logger: logger})
}

// newHubConfig connects the hub to Redis. The router closes the subscriber;
// the poison publisher is closed after the hub stopped (fx stops in reverse).
func newHubConfig(lc fx.Lifecycle, cfg config, sink sensorhub.Sink, logger *slog.Logger) (sensorhub.Config, error) {
	sub, err := redis.NewSubscriber(redis.SubscriberConfig{
		Client:       goredis.NewClient(cfg.redis),
		Group:        cfg.group,
		Consumer:     cfg.consumer,
		MaxIdleTime:  cfg.claimIdle,
		CloseTimeout: cfg.shutdownTimeout,
		Logger:       logger,
	})
	if err != nil {
		return sensorhub.Config{}, err
	}
	pub, err := redis.NewPublisher(goredis.NewClient(cfg.redis), logger)
	if err != nil {
		return sensorhub.Config{}, err
	}
	lc.Append(fx.StopHook(pub.Close))
	return sensorhub.Config{
		Subscriber:     sub,
		Publisher:      pub,
		Sink:           sink,
		Stream:         cfg.stream,
		Decoder:        cfg.decoder,
		HandlerTimeout: cfg.handlerTimeout,
		CloseTimeout:   cfg.shutdownTimeout,
		Logger:         logger,
	}, nil
}

func startBridge(lc fx.Lifecycle, cfg config, client *goredis.Client, logger *slog.Logger) error {
	if !cfg.bridge {
		logger.Info("Pub/Sub bridge disabled", "env", "SENSORHUB_BRIDGE")
		return nil
	}
	bridge, err := redis.NewBridge(redis.BridgeConfig{Client: client, Channel: cfg.channel, Stream: cfg.stream, Logger: logger})
	if err != nil {
		return err
	}
	lc.Append(fx.StartStopHook(bridge.Start, bridge.Stop))
	return nil
}

func startHealthServer(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, client *goredis.Client, hub *sensorhub.Hub, logger *slog.Logger) {
	checks := []health.Check{
		{Name: "postgres", Func: pool.Ping},
		{Name: "redis", Func: func(ctx context.Context) error { return client.Ping(ctx).Err() }},
		{Name: "consumer", Func: hub.Check},
	}
	srv := health.NewServer(cfg.apiAddr, health.NewHandler(checks, 0), logger)
	lc.Append(fx.StartStopHook(srv.Start, srv.Stop))
}

// exitWhenHubStops shuts the app down with exit code 1 when the hub's router
// stops without being asked to.
func exitWhenHubStops(lc fx.Lifecycle, hub *sensorhub.Hub, shutdowner fx.Shutdowner) {
	stop := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				select {
				case <-hub.Done():
					if hub.Err() != nil {
						_ = shutdowner.Shutdown(fx.ExitCode(exitFailure))
					}
				case <-stop:
				}
			}()
			return nil
		},
		OnStop: func(context.Context) error { close(stop); return nil },
	})
}
