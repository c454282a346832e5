// Command embedded runs sensorhub inside a program of its own, wired with
// plain constructors and no fx: the built-in sensor types, the Redis stream
// as input, Postgres as storage, in one call of package pipeline. It stops
// on SIGINT or SIGTERM and prints what it stored.
//
//	DATABASE_URL=postgres://service@127.0.0.1:5432/sensorhub REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/embedded
//
// The database must be migrated first (sensorhub migrate up, or
// migrations.Up as examples/quickstart does); start-up fails otherwise.
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
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
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
	pool, err := pgxpool.New(ctx, cmp.Or(getenv("DATABASE_URL"), "postgres://service@127.0.0.1:5432/sensorhub"))
	if err != nil {
		return err
	}
	defer pool.Close()
	redisOpts, err := goredis.ParseURL(cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		return err
	}

	// Events stay off (the default): this program has no event consumers.
	p, err := pipeline.New(pipeline.Config{DB: pool, Redis: redisOpts, Stream: getenv("SENSORHUB_STREAM"), Logger: logger},
		handlers.Builtin()...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "consuming with %d sensor types\n", len(p.Hub().SensorTypes()))
	if err := p.Run(ctx); err != nil {
		return err
	}
	s := p.Hub().Stats()
	fmt.Fprintf(stdout, "stopped: %d messages, %d stored, %d duplicates, %d conflicts\n",
		s.Received, s.Stored, s.Duplicates, s.Conflicts)
	return nil
}
