package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
)

// DefaultGroup is the consumer group sensorhub reads the stream with. Part of
// the wire contract: renaming it would re-read the whole stream.
const DefaultGroup = "sensorhub"

// Subscriber defaults, used where a SubscriberConfig field is zero.
const (
	DefaultMaxIdleTime     = 30 * time.Second
	DefaultClaimInterval   = 5 * time.Second
	DefaultNackResendSleep = time.Second
	DefaultBlockTime       = time.Second
)

// SubscriberConfig configures NewSubscriber. Client is required; every other
// zero field takes the default its comment names.
type SubscriberConfig struct {
	// Client is the connection the subscriber reads with. The subscriber
	// owns it: Close closes it, so give it a client of its own.
	Client goredis.UniversalClient
	// Group is the consumer group. Default DefaultGroup ("sensorhub").
	Group string
	// Consumer names this process within the group. It must be stable
	// across restarts, so that a restarted process finds its own pending
	// entries first. Default: the host name.
	Consumer string
	// MaxIdleTime is how long an entry may stay unacked with another
	// consumer before this one claims it. Default DefaultMaxIdleTime (30 s).
	MaxIdleTime time.Duration
	// ClaimInterval is how often idle entries are looked for.
	// Default DefaultClaimInterval (5 s).
	ClaimInterval time.Duration
	// NackResendSleep is the pause before a nacked message is delivered
	// again; it keeps a failing message from spinning.
	// Default DefaultNackResendSleep (1 s).
	NackResendSleep time.Duration
	// BlockTime bounds one blocking read, and so how quickly Close returns.
	// Default DefaultBlockTime (1 s).
	BlockTime time.Duration
	// Logger receives the subscriber's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with the configuration at once.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("redis client is required"))
	}
	for name, d := range map[string]time.Duration{"max idle time": c.MaxIdleTime, "claim interval": c.ClaimInterval,
		"nack resend sleep": c.NackResendSleep, "block time": c.BlockTime} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	return errors.Join(errs...)
}

func (c *SubscriberConfig) setDefaults() error {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Consumer == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("consumer name from host name: %w", err)
		}
		c.Consumer = host
	}
	if c.MaxIdleTime == 0 {
		c.MaxIdleTime = DefaultMaxIdleTime
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = DefaultClaimInterval
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = DefaultNackResendSleep
	}
	if c.BlockTime == 0 {
		c.BlockTime = DefaultBlockTime
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// NewSubscriber returns a Watermill subscriber that reads a stream through a
// consumer group, creating the group (and stream) if missing, starting with
// the entries this consumer had pending and claiming entries that other,
// dead consumers left idle for MaxIdleTime. Every entry becomes a message,
// whatever its layout (see Unmarshaller); each message carries its entry id
// in the sensorhub.MetadataEntryID metadata.
func NewSubscriber(cfg SubscriberConfig) (message.Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis: subscriber config: %w", err)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("redis: subscriber config: %w", err)
	}
	cfg.Client.AddHook(entryIDHook{})
	sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:                        cfg.Client,
		Unmarshaller:                  Unmarshaller{},
		Consumer:                      cfg.Consumer,
		ConsumerGroup:                 cfg.Group,
		NackResendSleep:               cfg.NackResendSleep,
		BlockTime:                     cfg.BlockTime,
		ClaimInterval:                 cfg.ClaimInterval,
		MaxIdleTime:                   cfg.MaxIdleTime,
		OldestId:                      "0",
		DisableIndefiniteInitialBlock: true,
	}, watermill.NewSlogLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("redis: new subscriber: %w", err)
	}
	return sub, nil
}
