package pipeline

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// transport is the pipeline's Redis side: the subscriber the hub reads
// the stream with, and one publisher for the poison queue and the events
// stream. Each has a client of its own, made from Config.Redis.
type transport struct {
	subscriber message.Subscriber
	publisher  message.Publisher
}

func newTransport(cfg Config) (*transport, error) {
	sub, err := redis.NewSubscriber(redis.SubscriberConfig{
		Client:   goredis.NewClient(cfg.Redis),
		Group:    cfg.Group,
		Consumer: cfg.Consumer,
		// An entry whose payload is over the message limit is poisoned
		// without being read into memory.
		MaxFieldBytes: cfg.Decoder.MaxMessageBytes,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	pub, err := redis.NewPublisher(goredis.NewClient(cfg.Redis), cfg.Logger)
	if err != nil {
		return nil, errors.Join(err, sub.Close())
	}
	return &transport{subscriber: sub, publisher: pub}, nil
}

// close closes subscriber and publisher. Closing twice is harmless: the
// hub's router closes the subscriber too when it stops.
func (t *transport) close() error {
	return errors.Join(t.subscriber.Close(), t.publisher.Close())
}
