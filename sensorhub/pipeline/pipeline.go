// Package pipeline runs sensorhub end to end in one call: readings from a
// Redis stream, through a hub of the caller's sensor types, into
// PostgreSQL, with the poison queue on Redis and, when events are on, the
// outbox forwarder that moves committed events to the events stream.
//
//	opts, err := goredis.ParseURL("redis://127.0.0.1:6379/0")
//	...
//	p, err := pipeline.New(pipeline.Config{DB: pool, Redis: opts, Events: true}, handlers.Builtin()...)
//	if err != nil {
//		return err
//	}
//	return p.Run(ctx) // until ctx ends
//
// Zone-less device times are read in each station's zone from the table
// stations (sensorhub station set), refreshed every StationRefresh, unless
// Config.Decoder.Zones is given.
//
// Start refuses a database that was never migrated (see migrations.Up and
// migrations.Check). Events are opt-in: with Events on, the pipeline
// forwards them itself, so the outbox never grows unforwarded; with Events
// off, a handler that returns events has its message poisoned with reason
// sensorhub.ReasonEventsDisabled instead of losing them silently.
//
// Rollups (readings_5m, readings_1h, readings_1d; docs/rollups.md) are
// kept by a rollup.Worker, unless Config.DisableRollups.
//
// The pieces (sensorhub.New, redis, postgres, outbox) remain for programs
// that wire them differently, as cmd/sensorhub does for its metrics.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/migrations"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
	"github.com/sensorhub/sensorhub/sinks/postgres/stations"
)

// Config configures a Pipeline. DB and Redis (or RedisCluster) are
// required; every other zero field takes the default its comment names.
type Config struct {
	// DB is the PostgreSQL database the readings and the outbox are in,
	// migrated with package migrations. Required; never closed.
	DB *pgxpool.Pool
	// Redis is how to reach the server the streams are on, e.g. from
	// goredis.ParseURL. Required. The pipeline opens clients of its own
	// with these options and closes them in Stop.
	Redis *goredis.Options
	// RedisCluster, in place of Redis, is how to reach a Redis Cluster
	// (see redis.Config.ClusterOptions): Stream, its poison stream and its
	// nack hash must then share a hash tag, e.g. Stream "{sensor}stream".
	RedisCluster *goredis.ClusterOptions
	// Stream is the Redis stream readings arrive on; its poison queue is
	// Stream + sensorhub.PoisonSuffix. Default sensorhub.DefaultStream.
	Stream string
	// Group is the Redis consumer group. Default the redis package's
	// DefaultGroup ("sensorhub").
	Group string
	// Consumer names this process within Group; stable across restarts.
	// Default the host name.
	Consumer string
	// Events turns events on: the sink writes readings.stored and the
	// handlers' events to the outbox, and the pipeline forwards them to
	// EventsStream. Default off.
	Events bool
	// EventsStream is the Redis stream events are forwarded to. Default
	// sensorhub.DefaultEventsStream.
	EventsStream string
	// Staleness, when set, announces sensors that stop reporting
	// (sensor.stale) and come back (sensor.recovered) by this policy: the
	// sink tracks arrivals and the pipeline runs a staleness.Sweeper. It
	// needs Events. Default nil: off.
	Staleness *staleness.Policy
	// StaleSweepInterval is how often the sweeper looks for stale sensors.
	// Default staleness.DefaultSweepInterval (5 s).
	StaleSweepInterval time.Duration
	// Decoder controls decoding and validation of messages. When its Zones
	// is nil, the pipeline reads the stations' zones from the table
	// stations (see package stations), every StationRefresh.
	Decoder sensorhub.DecoderConfig
	// StationRefresh is how often the stations' zones are read again, so
	// how soon a changed zone applies. Default stations.DefaultRefresh
	// (2 s).
	StationRefresh time.Duration
	// Processors run inside the sink's commit transactions (see
	// postgres.Processor), e.g. alarms.New for the threshold rules; the
	// pipeline also runs the flusher that releases the readings of series
	// that stopped sending (postgres.Sink.RunFlusher). None by default.
	Processors []postgres.Processor
	// Derived, when set, computes the derived quantities (dew point, heat
	// index, rain from running totals, …: package derived) in the sink's
	// transactions, after Processors. nil turns them off. See
	// docs/derived.md.
	Derived *derived.Config
	// ReorderWindow is the processors' reorder window. Default
	// postgres.DefaultReorderWindow (10 s).
	ReorderWindow time.Duration
	// QC, when set, runs quality control (package qc) before Processors,
	// so that they never see a reading it fails. Its Types default to the
	// pipeline's sensor types. Default nil: off (readings keep qc_flag 2).
	QC *qc.Config
	// DisableRollups turns the rollup worker off: readings_5m, readings_1h
	// and readings_1d are then not maintained, and the invalidation log
	// that migration 0009's triggers fill grows until a worker runs.
	// Default false: the pipeline runs a rollup.Worker over its sensor
	// types, with the days of stations without a zone in Decoder.Location
	// (default UTC).
	DisableRollups bool
	// RawRetention is how long readings are kept, in device time: the
	// pipeline gives each month of readings its partition (partition.Sink)
	// and runs a partition.Maintainer, which drops the months older than
	// this; rollups older than that are never recomputed
	// (rollup.Config.Retention). Default zero: keep everything.
	RawRetention time.Duration
	// Logger receives the pipeline's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("pipeline: Config.DB is nil"))
	}
	if (c.Redis == nil) == (c.RedisCluster == nil) {
		errs = append(errs, errors.New("pipeline: set one of Config.Redis and Config.RedisCluster"))
	}
	if c.RawRetention < 0 {
		errs = append(errs, fmt.Errorf("pipeline: Config.RawRetention must not be negative, got %s", c.RawRetention))
	}
	if c.StationRefresh < 0 {
		errs = append(errs, fmt.Errorf("pipeline: Config.StationRefresh must not be negative, got %s", c.StationRefresh))
	}
	if c.RawRetention < 0 {
		errs = append(errs, fmt.Errorf("pipeline: Config.RawRetention must not be negative, got %s", c.RawRetention))
	}
	if c.Staleness != nil {
		if !c.Events {
			errs = append(errs, errors.New("pipeline: Config.Staleness needs Config.Events"))
		}
		errs = append(errs, c.Staleness.Validate())
	}
	return errors.Join(append(errs, c.Decoder.Validate())...)
}

func (c *Config) setDefaults() {
	c.Stream = cmp.Or(c.Stream, sensorhub.DefaultStream)
	c.EventsStream = cmp.Or(c.EventsStream, sensorhub.DefaultEventsStream)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// stopTimeout bounds Run's Stop after its context ended: the hub's close
// timeout and some time for the forwarder.
const stopTimeout = sensorhub.DefaultCloseTimeout + 10*time.Second

// Pipeline is a running sensorhub: hub, Redis transport, Postgres sink and,
// with events on, the outbox forwarder. It runs once.
type Pipeline struct {
	cfg       Config
	hub       *sensorhub.Hub
	transport *transport
	forwarder *outbox.Forwarder  // nil with events off
	sweeper   *staleness.Sweeper // nil with staleness off
	rollups   *rollup.Worker     // nil with rollups off
	zones     *stations.Zones    // nil when Config.Decoder.Zones was given
	sink      *postgres.Sink
	partition *partition.Maintainer

	stopFlusher context.CancelFunc // nil until Start
	flusherDone chan struct{}
}

// New returns a pipeline of the sensor types given, not started. It fails
// for an invalid configuration or invalid sensor types (see sensorhub.New).
// New does not connect; Start does.
func New(cfg Config, types ...sensorhub.SensorType) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	var (
		observers []postgres.Observer
		sweeper   *staleness.Sweeper
	)
	if cfg.Staleness != nil {
		observers = append(observers, staleness.NewTracker(*cfg.Staleness))
		var err error
		sweeper, err = staleness.NewSweeper(staleness.Config{DB: cfg.DB, Policy: *cfg.Staleness, SweepInterval: cfg.StaleSweepInterval, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}
	processors := slices.Clone(cfg.Processors)
	if cfg.QC != nil {
		qcCfg := *cfg.QC
		if qcCfg.Types == nil {
			qcCfg.Types = types
		}
		quality, err := qc.New(qcCfg)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		processors = append([]postgres.Processor{quality}, processors...)
	}
	if cfg.Derived != nil {
		dc := *cfg.Derived
		dc.DisableEvents = !cfg.Events
		d, err := derived.New(dc)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		processors = append(processors, d)
	}
	sink, err := postgres.New(postgres.Config{
		DB: cfg.DB, Logger: cfg.Logger, DisableEvents: !cfg.Events,
		Processors: processors, ReorderWindow: cfg.ReorderWindow, Observers: observers,
	})
	if err != nil {
		return nil, err
	}
	t, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	maintainer, err := partition.NewMaintainer(partition.Config{DB: cfg.DB, Retention: cfg.RawRetention, Logger: cfg.Logger})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("pipeline: %w", err), t.close())
	}
	p := &Pipeline{cfg: cfg, transport: t, sink: sink, sweeper: sweeper, partition: maintainer}
	if !cfg.DisableRollups {
		zone := rollup.DefaultZone
		if cfg.Decoder.Location != nil {
			zone = cfg.Decoder.Location.String()
		}
		p.rollups, err = rollup.NewWorker(rollup.Config{DB: cfg.DB, Types: types, Zone: zone, Retention: cfg.RawRetention, Logger: cfg.Logger})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("pipeline: %w", err), t.close())
		}
	}
	if cfg.Decoder.Zones == nil {
		p.zones, err = stations.NewZones(stations.ZonesConfig{DB: cfg.DB, Refresh: cfg.StationRefresh, Logger: cfg.Logger})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("pipeline: %w", err), t.close())
		}
		cfg.Decoder.Zones = p.zones
	}
	p.hub, err = sensorhub.New(sensorhub.Config{
		Subscriber:   t.Subscriber(),
		Publisher:    t.PoisonPublisher(),
		PoisonStream: t.PoisonStream(),
		Sink:         partition.NewSink(sink, cfg.DB, cfg.Logger),
		Stream:       cfg.Stream,
		Decoder:      cfg.Decoder,
		Logger:       cfg.Logger,
	}, types...)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("pipeline: %w", err), t.close())
	}
	if cfg.Events {
		p.forwarder, err = outbox.NewForwarder(outbox.Config{DB: cfg.DB, Publisher: t.events, Stream: cfg.EventsStream, Logger: cfg.Logger})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("pipeline: %w", err), t.close())
		}
	}
	return p, nil
}

// Hub returns the pipeline's hub, for its Stats and its health Check.
func (p *Pipeline) Hub() *sensorhub.Hub { return p.hub }

// Sweeper returns the staleness sweeper, for its Stats; nil when
// Config.Staleness is nil.
func (p *Pipeline) Sweeper() *staleness.Sweeper { return p.sweeper }

// Rollups returns the rollup worker, for its Stats and Check; nil with
// Config.DisableRollups.
func (p *Pipeline) Rollups() *rollup.Worker { return p.rollups }

// Start checks that the database is migrated (an error wrapping
// migrations.ErrNotMigrated names what is missing), starts the forwarder,
// if events are on, the staleness sweeper and the rollup worker, if on,
// then the hub and the
// processors' flusher, and returns once they run. ctx
// bounds only the start-up. After a failed Start, the pipeline is closed.
func (p *Pipeline) Start(ctx context.Context) error {
	if err := migrations.Check(ctx, p.cfg.DB); err != nil {
		return errors.Join(fmt.Errorf("pipeline: start: %w", err), p.Stop(context.WithoutCancel(ctx)))
	}
	if p.zones != nil {
		if err := p.zones.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("pipeline: start: %w", err), p.Stop(context.WithoutCancel(ctx)))
		}
	}
	if p.forwarder != nil {
		if err := p.forwarder.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("pipeline: start: %w", err), p.Stop(context.WithoutCancel(ctx)))
		}
	}
	if p.sweeper != nil {
		if err := p.sweeper.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("pipeline: start: %w", err), p.Stop(context.WithoutCancel(ctx)))
		}
	}
	if err := p.partition.Start(ctx); err != nil {
		return errors.Join(fmt.Errorf("pipeline: start: %w", err), p.Stop(context.WithoutCancel(ctx)))
	}
	if p.rollups != nil {
		if err := p.rollups.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("pipeline: start: %w", err), p.Stop(context.WithoutCancel(ctx)))
		}
	}
	if err := p.hub.Start(ctx); err != nil {
		return errors.Join(fmt.Errorf("pipeline: start: %w", err), p.Stop(context.WithoutCancel(ctx)))
	}
	flushCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stopFlusher, p.flusherDone = cancel, make(chan struct{})
	go func() {
		defer close(p.flusherDone)
		p.sink.RunFlusher(flushCtx)
	}()
	p.cfg.Logger.InfoContext(ctx, "pipeline: started", "stream", p.cfg.Stream, "events", p.cfg.Events)
	return nil
}

// Stop stops the hub (see sensorhub.Hub.Stop: messages in flight finish or
// are redelivered later), then the flusher, the staleness sweeper, the
// rollup worker, the
// forwarder and the zones' refreshing, and closes the Redis clients the
// pipeline opened. It may be called whether or not Start was.
func (p *Pipeline) Stop(ctx context.Context) error {
	errs := []error{p.hub.Stop(ctx)}
	if p.stopFlusher != nil {
		p.stopFlusher()
		<-p.flusherDone
	}
	if p.sweeper != nil {
		errs = append(errs, p.sweeper.Stop(ctx))
	}
	if p.rollups != nil {
		errs = append(errs, p.rollups.Stop(ctx))
	}
	errs = append(errs, p.partition.Stop(ctx))
	if p.forwarder != nil {
		errs = append(errs, p.forwarder.Stop(ctx))
	}
	if p.zones != nil {
		errs = append(errs, p.zones.Stop(ctx))
	}
	errs = append(errs, p.transport.close())
	return errors.Join(errs...)
}

// Run starts the pipeline and blocks until ctx ends, then stops it. It
// returns the error of Start, or the hub's when it stopped by itself.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-p.hub.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	return errors.Join(p.hub.Err(), p.Stop(stopCtx))
}
