package pipeline

import (
	"cmp"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// transport is the pipeline's Redis side: the redis.Transport the hub reads
// the stream with and poisons through, and, with events on, a publisher
// for the events stream on a client of its own. Both are made from
// Config.Redis or Config.RedisCluster and closed by close.
type transport struct {
	*redis.Transport
	events message.Publisher // nil with events off
}

func newTransport(cfg Config) (*transport, error) {
	t, err := redis.New(redis.Config{
		Options:        cfg.Redis,
		ClusterOptions: cfg.RedisCluster,
		Stream:         cfg.Stream,
		Group:          cfg.Group,
		Consumer:       cfg.Consumer,
		// The hub reads the entries of a read as one bundle.
		Bundles: true,
		// An entry whose payload is over the message limit is poisoned
		// without being read into memory.
		MaxFieldBytes: cfg.Decoder.MaxMessageBytes,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if !cfg.Events {
		return &transport{Transport: t}, nil
	}
	events, err := redis.NewPublisher(eventsClient(cfg), cfg.Logger)
	if err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return &transport{Transport: t, events: events}, nil
}

// eventsClient returns the client of the events publisher, of Redis or
// of RedisCluster; the publisher closes it.
func eventsClient(cfg Config) goredis.UniversalClient {
	if cfg.RedisCluster == nil {
		return goredis.NewClient(cfg.Redis)
	}
	opts := *cfg.RedisCluster
	opts.ClusterStateReloadInterval = cmp.Or(opts.ClusterStateReloadInterval, redis.DefaultClusterReloadInterval)
	return goredis.NewClusterClient(&opts)
}

// close closes the events publisher and the transport's clients.
func (t *transport) close() error {
	var errs []error
	if t.events != nil {
		errs = append(errs, t.events.Close())
	}
	return errors.Join(append(errs, t.Transport.Close())...)
}
