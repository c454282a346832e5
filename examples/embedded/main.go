// Command embedded runs sensorhub inside a program of its own, wired with
// plain constructors and no fx: the built-in sensor types, the Redis stream
// as input, Postgres as storage. It stops on SIGINT or SIGTERM and prints
// what it stored.
//
//	DATABASE_URL=postgres://service@127.0.0.1:5432/sensorhub REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/embedded
//
// The database must be migrated first (sensorhub migrate up).
package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sinks/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

// run consumes readings until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stream := cmp.Or(getenv("SENSORHUB_STREAM"), sensorhub.DefaultStream)

	pool, err := pgxpool.New(ctx, cmp.Or(getenv("DATABASE_URL"), "postgres://service@127.0.0.1:5432/sensorhub"))
	if err != nil {
		return err
	}
	defer pool.Close()
	redisOpts, err := goredis.ParseURL(cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		return err
	}

	// This program runs no outbox forwarder (cmd/sensorhub does), so it
	// writes no events that would pile up unforwarded.
	sink, err := postgres.New(postgres.Config{DB: pool, Logger: logger, DisableEvents: true})
	if err != nil {
		return err
	}
	// Subscriber and publisher each own (and close) a client.
	sub, err := redis.NewSubscriber(redis.SubscriberConfig{Client: goredis.NewClient(redisOpts), Logger: logger})
	if err != nil {
		return err
	}
	pub, err := redis.NewPublisher(goredis.NewClient(redisOpts), logger)
	if err != nil {
		return err
	}
	defer pub.Close()

	hub, err := sensorhub.New(sensorhub.Config{Subscriber: sub, Publisher: pub, Sink: sink, Stream: stream, Logger: logger}, handlers.Builtin()...)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "consuming stream %s with %d sensor types\n", stream, len(hub.SensorTypes()))
	if err := hub.Run(ctx); err != nil {
		return err
	}
	s := hub.Stats()
	fmt.Fprintf(stdout, "stopped: %d messages, %d stored, %d duplicates, %d conflicts\n",
		s.Received, s.Stored, s.Duplicates, s.Conflicts)
	return nil
}
