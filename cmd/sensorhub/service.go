package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/health"
	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubfx"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/api"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
	"github.com/sensorhub/sensorhub/sinks/postgres/stations"
)

// startTimeout bounds start-up: connecting, creating the consumer group,
// binding the HTTP port.
const startTimeout = 30 * time.Second

// runService runs processor, bridge and health server until ctx ends, or
// until the hub stops by itself, which is an error: a service that no longer
// consumes must not idle on as if healthy.
func runService(ctx context.Context, cfg config, logger *slog.Logger) error {
	var (
		hub    *sensorhub.Hub
		schema *schemaGuard
	)
	exit, err := runApp(ctx, cfg, logger,
		fx.Provide(newPool, newSchemaGuard, newPostgresSink, newSink, newTransport, newZones, newHubConfig, newAPI),
		fx.Provide(
			fx.Annotate(postgresCheck, fx.ResultTags(`group:"`+healthChecksGroup+`"`)),
			fx.Annotate(consumerCheck, fx.ResultTags(`group:"`+healthChecksGroup+`"`)),
			fx.Annotate(transportCheck, fx.ResultTags(`group:"`+healthChecksGroup+`"`)),
		),
		sensorhubfx.SensorTypes(handlers.Builtin()...),
		sensorhubfx.Module,
		outboxModule,
		processingModule,
		stalenessModule,
		rollupModule,
		partitionModule,
		faultHooksModule,
		fx.Invoke(startBridge, registerHubMetrics, registerSubscriberMetrics, registerRedisMetrics, registerOutboxMetrics, exitWhenHubStops),
		fx.Populate(&hub, &schema),
	)
	if exit != 0 {
		if schemaErr := schema.Err(); schemaErr != nil {
			return errors.Join(schemaErr, err)
		}
		return errors.Join(fmt.Errorf("hub stopped: %w", hub.Err()), err)
	}
	return err
}

// runBridge runs the Pub/Sub bridge and the health server alone: no
// processor, no outbox forwarder, no database. SENSORHUB_BRIDGE, the switch
// of the bridge inside run, does not apply.
func runBridge(ctx context.Context, cfg config, logger *slog.Logger) error {
	cfg.bridge = true
	_, err := runApp(ctx, cfg, logger, fx.Invoke(startBridge))
	return err
}

// runApp runs an application of the components in opts, next to the Redis
// client, the metrics registry and the HTTP server (GET /healthcheck with
// the checks of group healthChecksGroup, and GET /metrics) that every
// command serving HTTP shares. It returns once ctx ends or a component
// shuts the application down: then exit is the exit code it asked for.
func runApp(ctx context.Context, cfg config, logger *slog.Logger, opts ...fx.Option) (exit int, err error) {
	app := fx.New(
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.StartTimeout(startTimeout),
		fx.StopTimeout(cfg.shutdownTimeout+10*time.Second),
		fx.Supply(cfg, logger),
		fx.Provide(newRedisClient, metrics.NewRegistry),
		fx.Provide(fx.Annotate(redisCheck, fx.ResultTags(`group:"`+healthChecksGroup+`"`))),
		fx.Options(opts...),
		// Last, so that it starts once the rest has: a 200 from
		// /healthcheck means everything runs.
		fx.Invoke(startHTTPServer),
	)
	if err := app.Err(); err != nil {
		return 0, err
	}
	startCtx, cancel := context.WithTimeout(ctx, app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		if ctx.Err() != nil {
			// A signal during start-up is a stop, not a failure: fx has
			// rolled back what had started.
			logger.Info("stopped during start-up")
			return 0, nil
		}
		return 0, err
	}
	select {
	case <-ctx.Done():
	case sig := <-app.Wait():
		exit = sig.ExitCode
	}
	stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), app.StopTimeout())
	defer cancelStop()
	return exit, app.Stop(stopCtx)
}

// defaultPoolConns is the pool's size unless the database URL sets
// pool_max_conns. pgxpool's own default (4 on a small machine) is less than
// the service's concurrent users: two writers, the flusher, the outbox
// forwarder's two loops, the rollup worker, the partition maintainer, the
// zones, the staleness sweeper and the API; when each waits on a slow
// database, /healthcheck would wait for a connection and call it down.
const defaultPoolConns = 16

// The pool's connections compile no statement to machine code (jit off,
// unless the database URL sets it): the set-based statements of the
// processors and the rollup worker over thousands of series are priced
// above jit_above_cost, and compiling one took seconds of CPU for work of
// milliseconds (at 10,000 readings/s from 1,000 stations the rollup
// worker's statement spent 4.9 s in JIT and 0.1 s running).
//
// They leave plan_cache_mode to PostgreSQL (auto, unless the database URL
// sets it): after five runs of a prepared statement PostgreSQL keeps a
// generic plan when it costs no more than the custom ones, and plans the
// statement no more. A custom plan of a statement over readings plans
// every monthly partition its bound parameters do not rule out, so forcing
// custom plans cost more the longer the archive: with 36 months stored, a
// drain with QC and derived quantities ran at 16,500 readings/s with them
// and at 21,000 with PostgreSQL's choice (docs/performance.md).

// newPool returns the PostgreSQL pool. Its start hook, the first of every
// component that uses it, refuses a schema that misses migrations of this
// build: the service would otherwise retry "relation does not exist"
// forever as an outage.
func newPool(lc fx.Lifecycle, cfg config) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.databaseURL)
	if err != nil {
		return nil, errors.New("parse database URL (value not shown)")
	}
	if !strings.Contains(cfg.databaseURL, "pool_max_conns") {
		pcfg.MaxConns = defaultPoolConns
	}
	setPlanning(pcfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	lc.Append(fx.StopHook(pool.Close))
	return pool, nil
}

// setPlanning gives the pool's connections the service's planning (no JIT;
// see above) unless the URL sets it.
func setPlanning(pcfg *pgxpool.Config) {
	if _, set := pcfg.ConnConfig.RuntimeParams["jit"]; !set {
		pcfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
}

// newRedisClient returns the client shared by the bridge, the health server
// and the Redis metrics. The transport creates clients of its own, so that
// the subscriber's can bound what it reads.
func newRedisClient(lc fx.Lifecycle, cfg config) goredis.UniversalClient {
	client := cfg.newRedisClient()
	lc.Append(fx.StopHook(client.Close))
	return client
}

// newPostgresSink returns the Postgres sink with the processors and, unless
// staleness is off, the staleness tracker in its transactions. It takes the
// schema guard so that fx builds the guard first: its start hook, the
// schema check, then runs before the hub and the forwarder start writing.
func newPostgresSink(cfg config, pool *pgxpool.Pool, _ *schemaGuard, processors []postgres.Processor, tracker *staleness.Tracker, logger *slog.Logger) (*postgres.Sink, error) {
	var observers []postgres.Observer
	if cfg.staleness.enabled {
		observers = append(observers, tracker)
	}
	return postgres.New(postgres.Config{
		DB: cfg.faults.sinkDB(pool, logger), Logger: logger,
		Processors: processors, ReorderWindow: cfg.processing.reorderWindow, Observers: observers,
	})
}

// newSink returns the Postgres sink, behind the partition.Sink that gives
// each month of device time its partition before a write, instrumented
// with commit metrics. The instrumented sink is still a BatchWriter, so
// group commit stays on.
func newSink(sink *postgres.Sink, pool *pgxpool.Pool, reg *prometheus.Registry, logger *slog.Logger) (sensorhub.Sink, error) {
	return metrics.InstrumentSink(partition.NewSink(sink, pool, logger), reg)
}

// newTransport returns the Redis transport of the hub's stream, with
// clients of its own, closed after the hub stopped (fx stops in reverse).
func newTransport(lc fx.Lifecycle, cfg config, logger *slog.Logger) (*redis.Transport, error) {
	t, err := openTransport(cfg, logger)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(t.Close))
	return t, nil
}

// openTransport returns the Redis transport of cfg's stream; the caller
// closes it.
func openTransport(cfg config, logger *slog.Logger) (*redis.Transport, error) {
	options, clusterOptions := cfg.redis, cfg.redisCluster
	if clusterOptions != nil {
		options = nil
	}
	return redis.New(redis.Config{
		Options:        options,
		ClusterOptions: clusterOptions,
		Stream:         cfg.stream,
		Group:          cfg.group,
		Consumer:       cfg.consumer,
		MaxIdleTime:    cfg.claimIdle,
		CloseTimeout:   cfg.shutdownTimeout,
		// The hub reads the entries of a read as one bundle.
		Bundles: true,
		// An entry whose payload is over the message limit is poisoned
		// without being read into memory.
		MaxFieldBytes: cfg.decoder.MaxMessageBytes,
		Logger:        logger,
	})
}

// newZones returns the stations' zones, read at start-up (after the
// migration check) and every SENSORHUB_STATION_REFRESH after, until the
// hub has stopped (fx stops in reverse).
func newZones(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, logger *slog.Logger) (*stations.Zones, error) {
	zones, err := stations.NewZones(stations.ZonesConfig{DB: pool, Refresh: cfg.stationRefresh, Logger: logger})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StartStopHook(zones.Start, zones.Stop))
	return zones, nil
}

// newHubConfig connects the hub to Redis through the transport: its
// subscriber, its poison publisher and its one poison stream name; and
// reads zone-less times in the stations' own zones.
func newHubConfig(cfg config, t *redis.Transport, sink sensorhub.Sink, zones *stations.Zones, logger *slog.Logger) sensorhub.Config {
	cfg.decoder.Zones = zones
	return sensorhub.Config{
		Subscriber:     t.Subscriber(),
		Publisher:      t.PoisonPublisher(),
		PoisonStream:   t.PoisonStream(),
		Sink:           sink,
		Stream:         cfg.stream,
		Decoder:        cfg.decoder,
		HandlerTimeout: cfg.handlerTimeout,
		CloseTimeout:   cfg.shutdownTimeout,
		Logger:         logger,
	}
}

// startBridge runs the Pub/Sub bridge, unless disabled, and exports its
// counters.
func startBridge(lc fx.Lifecycle, cfg config, client goredis.UniversalClient, reg *prometheus.Registry, logger *slog.Logger) error {
	if !cfg.bridge {
		logger.Info("Pub/Sub bridge disabled", "env", "SENSORHUB_BRIDGE")
		return nil
	}
	bridge, err := redis.NewBridge(redis.BridgeConfig{Client: client, Channel: cfg.channel, Stream: cfg.stream, Logger: logger})
	if err != nil {
		return err
	}
	collector, err := metrics.NewBridgeCollector(bridge)
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return fmt.Errorf("register bridge metrics: %w", err)
	}
	lc.Append(fx.StartStopHook(bridge.Start, bridge.Stop))
	return nil
}

// registerHubMetrics exports the hub's counters, read on every scrape.
func registerHubMetrics(reg *prometheus.Registry, hub *sensorhub.Hub) error {
	collector, err := metrics.NewHubCollector(hub)
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return fmt.Errorf("register hub metrics: %w", err)
	}
	return nil
}

// registerSubscriberMetrics exports the stream subscriber's counters, read
// on every scrape.
func registerSubscriberMetrics(reg *prometheus.Registry, t *redis.Transport) error {
	collector, err := metrics.NewSubscriberCollector(t.Subscriber())
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return fmt.Errorf("register subscriber metrics: %w", err)
	}
	return nil
}

// registerRedisMetrics exports the consumer group's lag and pending entries
// and the poison queue's length, asked of Redis on every scrape.
func registerRedisMetrics(reg *prometheus.Registry, cfg config, client goredis.UniversalClient, t *redis.Transport) error {
	collector, err := metrics.NewRedisCollector(redisStatsConfig(cfg, client, t))
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return fmt.Errorf("register redis metrics: %w", err)
	}
	return nil
}

// registerOutboxMetrics exports the outbox forwarder's counters and its lag.
func registerOutboxMetrics(reg *prometheus.Registry, fwd *outbox.Forwarder) error {
	collector, err := metrics.NewOutboxCollector(func() metrics.OutboxStats {
		s := fwd.Stats()
		return metrics.OutboxStats{Forwarded: s.Forwarded, Failed: s.Failed, Pending: s.Pending, Lag: s.Lag, MeasuredAt: s.MeasuredAt}
	})
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return fmt.Errorf("register outbox metrics: %w", err)
	}
	return nil
}

// httpServerParams are startHTTPServer's dependencies.
type httpServerParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    config
	Registry  *prometheus.Registry
	Logger    *slog.Logger
	// Checks are the health checks of the components that run, in the
	// group healthChecksGroup.
	Checks []health.Check `group:"health.checks"`
	// API is the read API and status page; nil where the command reads
	// no database (sensorhub bridge).
	API *api.API `optional:"true"`
}

// startHTTPServer serves the health endpoints, GET /metrics and, where the
// command has it, the read API and status page on API_HOST:API_PORT.
// SENSORHUB_API_TOKEN guards only the latter two.
func startHTTPServer(p httpServerParams) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(p.Registry, p.Logger))
	healthHandler := health.NewHandler(p.Checks, 0)
	if p.API != nil {
		for _, path := range []string{"/healthcheck", "/readyz", "/livez"} {
			mux.Handle(path, healthHandler)
		}
		p.API.Register(mux)
	} else {
		mux.Handle("/", healthHandler)
	}
	srv := health.NewServer(p.Config.apiAddr, mux, p.Logger)
	p.Lifecycle.Append(fx.StartStopHook(srv.Start, srv.Stop))
}

func redisCheck(client goredis.UniversalClient) health.Check {
	return health.Check{Name: "redis", Func: func(ctx context.Context) error { return client.Ping(ctx).Err() }}
}

func postgresCheck(pool *pgxpool.Pool) health.Check {
	return health.Check{Name: "postgres", Func: pool.Ping}
}

// transportCheck fails while Redis refuses the transport's commands for a
// reason retrying cannot fix, such as an ACL user without a right.
func transportCheck(t *redis.Transport) health.Check {
	return health.Check{Name: "redis_commands", Func: t.Check}
}

func consumerCheck(hub *sensorhub.Hub) health.Check {
	return health.Check{Name: "consumer", Func: hub.Check}
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
