package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// DefaultRedisTimeout bounds the Redis queries of one scrape when
// RedisConfig.Timeout is zero.
const DefaultRedisTimeout = time.Second

// RedisClient is the part of a go-redis client a RedisCollector uses;
// *goredis.Client and every goredis.UniversalClient implement it.
type RedisClient interface {
	XInfoGroups(ctx context.Context, stream string) *goredis.XInfoGroupsCmd
	XLen(ctx context.Context, stream string) *goredis.IntCmd
}

// RedisConfig configures a RedisCollector. Client is required; every other
// zero field takes the default its comment names.
type RedisConfig struct {
	// Client queries Redis. Required. The collector does not close it.
	Client RedisClient
	// Stream is the stream the hub consumes.
	// Default sensorhub.DefaultStream ("sensor_stream").
	Stream string
	// Group is the hub's consumer group. Default redis.DefaultGroup
	// ("sensorhub").
	Group string
	// PoisonStream is the poison queue: the redis.Transport's
	// PoisonStream, the name the hub poisons into. Required.
	PoisonStream string
	// Timeout bounds the queries of one scrape.
	// Default DefaultRedisTimeout (1 s).
	Timeout time.Duration
}

// Validate reports every problem with the configuration at once.
func (c RedisConfig) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("redis client is required"))
	}
	if c.PoisonStream == "" {
		errs = append(errs, errors.New("poison stream is required"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// The Redis metrics. Names are a contract with dashboards: do not rename.
var (
	redisUpDesc = prometheus.NewDesc("sensorhub_redis_up",
		"1 when Redis answered this scrape's queries, else 0 and the other Redis metrics are missing.", nil, nil)
	consumerLagDesc = prometheus.NewDesc("sensorhub_consumer_lag",
		"Stream entries not yet delivered to the consumer group (XINFO GROUPS lag); missing while Redis cannot tell or the group does not exist.", nil, nil)
	pendingEntriesDesc = prometheus.NewDesc("sensorhub_pending_entries",
		"Stream entries delivered to the consumer group but not acknowledged yet (XINFO GROUPS pending).", nil, nil)
	poisonQueueDesc = prometheus.NewDesc("sensorhub_poison_queue_length",
		"Entries in the poison stream (XLEN).", nil, nil)
)

// RedisCollector is a prometheus.Collector that asks Redis on every scrape
// about the hub's stream, consumer group and poison queue. When Redis does
// not answer within the timeout it reports sensorhub_redis_up 0 instead of
// failing the scrape. It is safe for concurrent use.
type RedisCollector struct {
	cfg RedisConfig
}

// NewRedisCollector returns a collector for cfg.
func NewRedisCollector(cfg RedisConfig) (*RedisCollector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, errors.Join(errors.New("metrics: invalid redis collector config"), err)
	}
	if cfg.Stream == "" {
		cfg.Stream = sensorhub.DefaultStream
	}
	if cfg.Group == "" {
		cfg.Group = redis.DefaultGroup
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultRedisTimeout
	}
	return &RedisCollector{cfg: cfg}, nil
}

// Describe implements prometheus.Collector.
func (c *RedisCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- redisUpDesc
	ch <- consumerLagDesc
	ch <- pendingEntriesDesc
	ch <- poisonQueueDesc
}

// Collect implements prometheus.Collector.
func (c *RedisCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	// go-redis heeds the context's deadline while dialling, but on an open
	// connection only with Options.ContextTimeoutEnabled; without it a
	// silent server holds a query for the client's ReadTimeout (3 s by
	// default). So the scrape waits at most Timeout and leaves a late
	// answer to the buffered channel.
	answer := make(chan redisAnswer, 1)
	go func() { answer <- c.query(ctx) }()
	var a redisAnswer
	select {
	case a = <-answer:
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	if a.err != nil {
		// The scrape is where the error is handled: Redis' own health is
		// the health check's and the logs' business.
		ch <- prometheus.MustNewConstMetric(redisUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(redisUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(poisonQueueDesc, prometheus.GaugeValue, float64(a.poison))
	if a.group == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(pendingEntriesDesc, prometheus.GaugeValue, float64(a.group.Pending))
	if a.group.Lag >= 0 { // go-redis reports -1 where Redis answers nil
		ch <- prometheus.MustNewConstMetric(consumerLagDesc, prometheus.GaugeValue, float64(a.group.Lag))
	}
}

// RedisStats is what one query of Redis learnt: the figures the
// collector exports, for other readers such as the status page.
type RedisStats struct {
	// PoisonQueueLength is the poison stream's length.
	PoisonQueueLength int64
	// ConsumerLag is the consumer group's lag; -1 while Redis cannot tell
	// or the group does not exist yet.
	ConsumerLag int64
	// PendingEntries are delivered but not acknowledged yet.
	PendingEntries int64
}

// Stats asks Redis for the figures of one scrape, bounded by ctx.
func (c *RedisCollector) Stats(ctx context.Context) (RedisStats, error) {
	a := c.query(ctx)
	if a.err != nil {
		return RedisStats{}, fmt.Errorf("metrics: ask redis: %w", a.err)
	}
	s := RedisStats{PoisonQueueLength: a.poison, ConsumerLag: -1}
	if a.group != nil {
		s.ConsumerLag, s.PendingEntries = a.group.Lag, a.group.Pending
	}
	return s, nil
}

// redisAnswer is what one scrape learnt from Redis.
type redisAnswer struct {
	group  *goredis.XInfoGroup // nil: no such stream or group yet
	poison int64
	err    error
}

func (c *RedisCollector) query(ctx context.Context) redisAnswer {
	group, err := c.group(ctx)
	if err != nil {
		return redisAnswer{err: err}
	}
	poison, err := c.cfg.Client.XLen(ctx, c.cfg.PoisonStream).Result()
	return redisAnswer{group: group, poison: poison, err: err}
}

// group returns the consumer group's XINFO GROUPS entry, or nil when the
// stream or the group does not exist yet (the hub creates both on start).
func (c *RedisCollector) group(ctx context.Context) (*goredis.XInfoGroup, error) {
	groups, err := c.cfg.Client.XInfoGroups(ctx, c.cfg.Stream).Result()
	if err != nil {
		// Redis answers a missing stream with an error, not an empty list.
		var rerr goredis.Error
		if errors.As(err, &rerr) && strings.Contains(err.Error(), "no such key") {
			return nil, nil
		}
		return nil, err
	}
	for i := range groups {
		if groups[i].Name == c.cfg.Group {
			return &groups[i], nil
		}
	}
	return nil, nil
}

// Interface guards.
var (
	_ prometheus.Collector = (*RedisCollector)(nil)
	_ RedisClient          = (*goredis.Client)(nil)
	_ RedisClient          = goredis.UniversalClient(nil)
)
