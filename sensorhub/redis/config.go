package redis

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DefaultGroup is the consumer group sensorhub reads the stream with. Part of
// the wire contract: renaming it would re-read the whole stream.
const DefaultGroup = "sensorhub"

// Subscriber defaults, used where a Config field is zero.
const (
	DefaultBatchSize     = 512
	DefaultMaxInFlight   = 1024
	DefaultBlockTime     = time.Second
	DefaultMaxIdleTime   = 30 * time.Second
	DefaultClaimInterval = 5 * time.Second
	DefaultNackDelay     = time.Second
	DefaultMaxNackDelay  = time.Minute
	DefaultMaxDeliveries = 10
	DefaultCloseTimeout  = 30 * time.Second
	DefaultReadPace      = 5 * time.Millisecond
)

// Subscriber defaults with Bundles, where an entry in flight costs no
// goroutine: reads and groups of commits four times as large.
const (
	DefaultBundleBatchSize   = 1024
	DefaultBundleMaxInFlight = 4096
)

// DefaultClusterReloadInterval is how old the slot map of a cluster client
// New creates may grow before a command makes the client load it again,
// where ClusterOptions.ClusterStateReloadInterval is zero. go-redis loads
// it again at once on a MOVED or ASK reply, but not when a master it knows
// stops answering: after a failover its clients would go on dialing the
// dead master for go-redis's default of a minute. Give a cluster client
// passed in Config.Client the same setting.
const DefaultClusterReloadInterval = 2 * time.Second

// Config configures New. One of Client, Options and ClusterOptions is
// required; every other zero field takes the default its comment names.
type Config struct {
	// Client, when set, is the connection everything of the transport
	// uses: a *goredis.Client, a *goredis.ClusterClient for a Redis
	// Cluster, or a Sentinel failover client (goredis.NewFailoverClient).
	// It stays the caller's: the transport never closes it and never
	// adds a hook to it, so entries are read whole, and one with a field
	// over MaxFieldBytes is poisoned after it was read. To keep such
	// fields out of memory, leave Client nil and set Options or
	// ClusterOptions.
	Client goredis.UniversalClient
	// Options, used when Client is nil, are those of the clients the
	// transport creates, and Close closes: one for the subscriber, whose
	// connections drop fields over MaxFieldBytes as they arrive, and one
	// for the poison publisher and the poison queue, which read and write
	// entries whole. Their MaxRetries and DialerRetries are overridden:
	// they try each command, and dial each connection, once, as the
	// transport retries with a backoff of its own (100 ms doubling up to
	// 5 s).
	Options *goredis.Options
	// ClusterOptions, used when Client and Options are nil, are those of
	// the Redis Cluster clients the transport creates, as with Options,
	// except that MaxRedirects is left alone, as the cluster client follows
	// MOVED and ASK redirections within it (default 3), and that a zero
	// ClusterStateReloadInterval is DefaultClusterReloadInterval (2 s), so
	// that the clients find a promoted replica within seconds of a
	// failover. On a cluster, whichever client is used, Stream, its nack
	// hash and PoisonStream must share a hash slot (see Validate).
	ClusterOptions *goredis.ClusterOptions
	// Stream is the stream the hub reads, and the one the poison queue
	// replays to. Default sensorhub.DefaultStream ("sensor_stream").
	Stream string
	// PoisonStream is the one poison stream of the transport: the
	// subscriber's poison paths, the poison publisher and the poison queue
	// all use it; give the hub and the metrics Transport.PoisonStream.
	// Default Stream + sensorhub.PoisonSuffix.
	PoisonStream string
	// Group is the consumer group. Default DefaultGroup ("sensorhub").
	Group string
	// Consumer names this process within the group. It must be stable
	// across restarts, so that a restarted process finds its own pending
	// entries first. Default: the host name.
	Consumer string
	// BatchSize is the most entries one XREADGROUP asks for.
	// Default DefaultBatchSize (512), with Bundles DefaultBundleBatchSize
	// (1024).
	BatchSize int
	// MaxInFlight bounds the entries delivered but not yet acked; reading
	// pauses at the bound, which is what bounds memory when the sink is
	// slow or down. Without Bundles each message in flight holds two
	// goroutines (the router's handler and the wait for its ack) and its
	// data: about 20 KiB of RSS measured, 21 MiB at the default; with
	// Bundles an entry holds only its data. Default DefaultMaxInFlight
	// (1024), with Bundles DefaultBundleMaxInFlight (4096).
	MaxInFlight int
	// BlockTime bounds one blocking read, and so how quickly Close returns.
	// Default DefaultBlockTime (1 s).
	BlockTime time.Duration
	// MaxIdleTime is how long an entry may stay unacked with another
	// consumer before this one claims it. Default DefaultMaxIdleTime (30 s).
	MaxIdleTime time.Duration
	// ClaimInterval is how often idle entries are looked for, and how
	// often the idle time of the entries in hand is reset so that no other
	// consumer claims them. It must be at most a third of MaxIdleTime, so
	// that an entry in hand is refreshed at least twice before it could be
	// claimed. Default DefaultClaimInterval (5 s), or a third of
	// MaxIdleTime when that is shorter.
	ClaimInterval time.Duration
	// NackDelay is the pause before a nacked message is delivered again;
	// it doubles with each further nack of the same entry up to
	// MaxNackDelay, so a failing message never spins.
	// Default DefaultNackDelay (1 s).
	NackDelay time.Duration
	// MaxNackDelay caps NackDelay's doubling. Default DefaultMaxNackDelay (1 min).
	MaxNackDelay time.Duration
	// MaxDeliveries is how often the consumer may nack an entry: after the
	// MaxDeliveries-th nack it goes to the poison stream with reason
	// ReasonRedeliveryLimit instead of looping for ever. Deliveries that
	// end without a nack do not count: re-reads after a restart, claims
	// after a crash, nor a nack at the stop of the subscription (see the
	// package doc). Default DefaultMaxDeliveries (10).
	MaxDeliveries int
	// ReadPace is the pause after a read that returned fewer entries than
	// asked for, so that at a steady rate entries are fetched and committed
	// a few milliseconds' worth at a time instead of one wake-up each; a
	// backlog is read without pause. It adds at most ReadPace to latency.
	// Default DefaultReadPace (5 ms); negative turns pacing off.
	ReadPace time.Duration
	// Bundles delivers the entries of one read as one message, a bundle
	// (see sensorhub.NewBundle), for a sensorhub.Hub: the router then
	// runs a goroutine and its middleware per read instead of per entry,
	// and no goroutine waits for each entry's ack. Every entry still has a
	// message of its own in the bundle, acked, nacked, redelivered and
	// poisoned on its own; a nacked entry comes back alone. Leave it off
	// for a consumer other than a Hub, which would not know bundles.
	// Default false.
	Bundles bool
	// MaxFieldBytes bounds the size of one field of a stream entry, name or
	// value, the payload among them. An entry with a larger one goes to
	// the poison stream with reason sensorhub.ReasonTooLarge and is acked;
	// the oversized field is not copied (see the package doc). With Options or ClusterOptions (not Client) such a field is never read into
	// memory: the subscriber's connections drop its bytes as they arrive.
	// Without this bound a producer could make the subscriber read
	// BatchSize entries of up to 512 MiB each (Redis's proto-max-bulk-len)
	// in one XREADGROUP. Set it to the hub's DecoderConfig.MaxMessageBytes,
	// which a payload must not exceed anyway. Default
	// sensorhub.DefaultMaxMessageBytes (64 KiB); negative turns the bound
	// off.
	MaxFieldBytes int
	// CloseTimeout bounds how long the subscriber's Close waits for the
	// acks of messages already delivered; what is not acked by then stays
	// pending and is delivered again. Default DefaultCloseTimeout (30 s).
	CloseTimeout time.Duration
	// Logger receives the transport's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with the configuration at once. On a
// Redis Cluster (Client is a *goredis.ClusterClient, or ClusterOptions is
// set) it requires Stream, its nack hash (Stream + ":nacks") and
// PoisonStream to share a hash slot, which a hash tag in Stream gives them
// all: "{sensor}stream", with the default poison stream
// "{sensor}stream.poison".
func (c Config) Validate() error {
	var errs []error
	switch given := countSet(c.Client != nil, c.Options != nil, c.ClusterOptions != nil); {
	case given == 0:
		errs = append(errs, errors.New("redis client, options or cluster options are required"))
	case given > 1:
		errs = append(errs, errors.New("redis client, options and cluster options are exclusive: set one"))
	}
	stream := cmp.Or(c.Stream, sensorhub.DefaultStream)
	poison := cmp.Or(c.PoisonStream, stream+sensorhub.PoisonSuffix)
	if poison == stream {
		errs = append(errs, fmt.Errorf("poison stream must differ from stream %q", stream))
	} else if c.onCluster() {
		if err := sameSlot(stream, poison); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"block time", c.BlockTime}, {"max idle time", c.MaxIdleTime}, {"claim interval", c.ClaimInterval},
		{"nack delay", c.NackDelay}, {"max nack delay", c.MaxNackDelay}, {"close timeout", c.CloseTimeout}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", d.name, d.d))
		}
	}
	for _, n := range []struct {
		name string
		n    int
	}{{"batch size", c.BatchSize}, {"max in flight", c.MaxInFlight}, {"max deliveries", c.MaxDeliveries}} {
		if n.n < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", n.name, n.n))
		}
	}
	idle := cmp.Or(c.MaxIdleTime, DefaultMaxIdleTime)
	if c.ClaimInterval > 0 && idle < claimIntervalsPerIdle*c.ClaimInterval {
		errs = append(errs, fmt.Errorf("max idle time %s must be at least %d claim intervals (%s): entries in hand would be claimed by other consumers",
			idle, claimIntervalsPerIdle, c.ClaimInterval))
	}
	return errors.Join(errs...)
}

// countSet returns how many of set are true.
func countSet(set ...bool) int {
	n := 0
	for _, b := range set {
		if b {
			n++
		}
	}
	return n
}

// claimIntervalsPerIdle is how many ClaimIntervals MaxIdleTime spans at
// least: keep-alive runs each ClaimInterval, and an entry in hand must be
// refreshed more than once before it could be claimed, so that one slow or
// failed XCLAIM does not hand it to another consumer.
const claimIntervalsPerIdle = 3

func (c *Config) setDefaults() error {
	c.Stream = cmp.Or(c.Stream, sensorhub.DefaultStream)
	c.PoisonStream = cmp.Or(c.PoisonStream, c.Stream+sensorhub.PoisonSuffix)
	c.Group = cmp.Or(c.Group, DefaultGroup)
	if c.Consumer == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("consumer name from host name: %w", err)
		}
		c.Consumer = host
	}
	if c.Bundles {
		c.BatchSize = cmp.Or(c.BatchSize, DefaultBundleBatchSize)
		c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultBundleMaxInFlight)
	}
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.MaxDeliveries = cmp.Or(c.MaxDeliveries, DefaultMaxDeliveries)
	c.BlockTime = cmp.Or(c.BlockTime, DefaultBlockTime)
	c.MaxIdleTime = cmp.Or(c.MaxIdleTime, DefaultMaxIdleTime)
	c.ClaimInterval = cmp.Or(c.ClaimInterval, min(DefaultClaimInterval, c.MaxIdleTime/claimIntervalsPerIdle))
	c.NackDelay = cmp.Or(c.NackDelay, DefaultNackDelay)
	c.MaxNackDelay = cmp.Or(c.MaxNackDelay, DefaultMaxNackDelay)
	c.CloseTimeout = cmp.Or(c.CloseTimeout, DefaultCloseTimeout)
	c.ReadPace = cmp.Or(c.ReadPace, DefaultReadPace)
	c.MaxFieldBytes = cmp.Or(c.MaxFieldBytes, sensorhub.DefaultMaxMessageBytes)
	c.BatchSize = min(c.BatchSize, c.MaxInFlight)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
