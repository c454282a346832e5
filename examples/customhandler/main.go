// Command customhandler adds a sensor type of its own, soil_ph, to
// sensorhub and stores its readings end to end: Redis stream in, Postgres
// out, in one call of package pipeline. Readings outside the type's range
// go to the poison queue, sensor_stream.poison.
//
//	DATABASE_URL=postgres://service@127.0.0.1:5432/sensorhub go run ./examples/customhandler
//	redis-cli XADD sensor_stream '*' payload '{"sensor":"soil_ph","value":6.5,"timestamp":"2024-12-01T12:00:00Z"}'
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

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
)

// soilPH is the whole custom sensor type: its wire name, canonical unit and
// valid range. Readings outside 0..14 go to the poison queue.
func soilPH() sensorhub.SensorType {
	return sensorhub.SensorType{Name: "soil_ph", Unit: "pH", Min: 0, Max: 14}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "customhandler:", err)
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
	opts, err := goredis.ParseURL(cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		return err
	}

	p, err := pipeline.New(pipeline.Config{DB: pool, Redis: opts, Stream: getenv("SENSORHUB_STREAM"), Logger: logger}, soilPH())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "consuming with sensor types %v\n", p.Hub().SensorTypes())
	if err := p.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stopped: %d stored\n", p.Hub().Stats().Stored)
	return nil
}
