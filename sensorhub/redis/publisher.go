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

// plainFields are metadata keys that the publisher also writes as plain
// entry fields, so that XRANGE in redis-cli shows why a message was poisoned,
// or an event's type, without decoding Watermill's msgpack metadata.
var plainFields = []string{
	sensorhub.MetadataReason,
	sensorhub.MetadataError,
	sensorhub.MetadataEntryID,
	sensorhub.MetadataPoisonedAt,
	sensorhub.MetadataEventType,
}

// Marshaller writes Watermill's redisstream layout plus the poison metadata
// and an event's type as plain fields.
type Marshaller struct{}

// Marshal implements redisstream.Marshaller.
func (Marshaller) Marshal(topic string, msg *message.Message) (map[string]any, error) {
	values, err := (redisstream.DefaultMarshallerUnmarshaller{}).Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	for _, key := range plainFields {
		if v := msg.Metadata.Get(key); v != "" {
			values[key] = v
		}
	}
	return values, nil
}

// NewPublisher returns a Watermill publisher that appends messages to Redis
// streams, in the layout the Subscriber reads, with the poison metadata and
// an event's type also as plain fields. The publisher owns client: Close closes it.
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

var _ redisstream.Marshaller = Marshaller{}
