package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	goredis "github.com/redis/go-redis/v9"
)

// runPublish sends one message, replacing redis-cli PUBLISH for test
// readings. By default it appends to the stream, which is durable; with
// --channel it publishes on the legacy Pub/Sub channel.
func runPublish(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	toStream := fs.Bool("stream", false, "append to the stream (default)")
	toChannel := fs.Bool("channel", false, "publish on the legacy Pub/Sub channel")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: publish: %v", errUsage, err)
	}
	if *toStream && *toChannel {
		return fmt.Errorf("%w: publish: --stream and --channel exclude each other", errUsage)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: publish takes exactly one JSON message", errUsage)
	}
	payload := fs.Arg(0)

	client := cfg.newRedisClient()
	defer client.Close()
	if *toChannel {
		n, err := publishToBridge(ctx, client, cfg.channel, payload)
		if err != nil {
			return fmt.Errorf("publish on channel %q: %w", cfg.channel, err)
		}
		fmt.Fprintf(stdout, "published on channel %s to %d subscriber(s)\n", cfg.channel, n)
		if n == 0 {
			return fmt.Errorf("no subscriber on channel %q: the message is lost (is sensorhub running with the bridge on?)", cfg.channel)
		}
		return nil
	}
	id, err := client.XAdd(ctx, &goredis.XAddArgs{Stream: cfg.stream, Values: []any{"payload", payload}}).Result()
	if err != nil {
		return fmt.Errorf("append to stream %q: %w", cfg.stream, err)
	}
	fmt.Fprintf(stdout, "appended to stream %s as entry %s\n", cfg.stream, id)
	return nil
}

// publishToBridge publishes payload on channel and returns how many
// subscribers received it. On a Redis Cluster, PUBLISH reaches the
// subscribers of every node but counts only those of the node it was sent
// to, so it goes to the master of the channel's hash slot, where go-redis
// subscribes the bridge.
func publishToBridge(ctx context.Context, client goredis.UniversalClient, channel, payload string) (int64, error) {
	var publisher goredis.Cmdable = client
	if cluster, ok := client.(*goredis.ClusterClient); ok {
		node, err := cluster.MasterForKey(ctx, channel)
		if err != nil {
			return 0, fmt.Errorf("find the node of channel %q: %w", channel, err)
		}
		publisher = node
	}
	return publisher.Publish(ctx, channel, payload).Result()
}
