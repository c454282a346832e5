package redis

import (
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Marshaller writes Watermill's redisstream layout plus, as plain entry
// fields, a poisoned message's PoisonRecord fields and an event's type, so
// that XRANGE in redis-cli shows why a message was poisoned, or an event's
// type, without decoding Watermill's msgpack metadata.
type Marshaller struct{}

// Marshal implements redisstream.Marshaller.
func (Marshaller) Marshal(topic string, msg *message.Message) (map[string]any, error) {
	values, err := (redisstream.DefaultMarshallerUnmarshaller{}).Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	fields := poisonRecordOf(msg).annotations()
	for i := 0; i < len(fields); i += 2 {
		values[fields[i].(string)] = fields[i+1]
	}
	if v := msg.Metadata.Get(sensorhub.MetadataEventType); v != "" {
		values[sensorhub.MetadataEventType] = v
	}
	return values, nil
}

// NewPublisher returns a Watermill publisher that appends messages to Redis
// streams, in the layout the Subscriber reads, with the poison metadata and
// an event's type also as plain fields. The publisher owns client: Close
// closes it. For the poison stream use Transport.PoisonPublisher.
func NewPublisher(client goredis.UniversalClient, logger *slog.Logger) (message.Publisher, error) {
	if logger == nil {
		logger = slog.Default()
	}
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client, Marshaller: Marshaller{}},
		watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("redis: new publisher: %w", err)
	}
	return pub, nil
}

// poisonPublisher appends poisoned messages to the transport's poison
// stream, in the Marshaller's layout, at most once per source entry.
type poisonPublisher struct {
	poisons *poisonStream
	errs    *errorLog
}

// Publish appends msgs to the poison stream and stops at the first
// failure. A message whose source entry (sensorhub.MetadataEntryID)
// already has a record there, written before a crash ended the XACK that
// should have followed, or by another replica, is not appended again.
// topic must be the poison stream: a hub configured with another would
// otherwise poison into a stream nothing reads.
func (p *poisonPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic != p.poisons.name {
		return fmt.Errorf("redis: poison publisher: topic %q is not the poison stream %q", topic, p.poisons.name)
	}
	for _, msg := range msgs {
		values, err := Marshaller{}.Marshal(topic, msg)
		if err != nil {
			return fmt.Errorf("redis: poison publisher: marshal message %s: %w", msg.UUID, err)
		}
		if _, err := p.poisons.add(msg.Context(), msg.Metadata.Get(sensorhub.MetadataEntryID), values); err != nil {
			p.errs.permanent("poison message "+msg.UUID, err)
			return fmt.Errorf("redis: poison publisher: message %s: %w", msg.UUID, err)
		}
	}
	return nil
}

// Close does nothing: the client is the transport's.
func (p *poisonPublisher) Close() error { return nil }

// Interface guards.
var (
	_ redisstream.Marshaller = Marshaller{}
	_ message.Publisher      = (*poisonPublisher)(nil)
)
