// Command customhandler adds a sensor type of its own, soil_ph, to
// sensorhub and stores its readings end to end: Redis stream in, Postgres
// out. It is wired with fx through sensorhubfx; examples/embedded shows the
// same without fx.
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
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubfx"
	"github.com/sensorhub/sensorhub/sinks/postgres"
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
	var hub *sensorhub.Hub
	app := fx.New(
		fx.NopLogger,
		fx.Supply(getenv),
		fx.Supply(slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		fx.Provide(newHubConfig),
		fx.Provide(sensorhubfx.AsSensorType(soilPH)),
		sensorhubfx.Module,
		fx.Populate(&hub),
	)
	if err := app.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "consuming with sensor types %v\n", hub.SensorTypes())
	<-ctx.Done()
	if err := app.Stop(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stopped: %d stored\n", hub.Stats().Stored)
	return nil
}

// newHubConfig connects the hub to Redis and Postgres as the environment
// says, closing what it opened when the app stops.
func newHubConfig(lc fx.Lifecycle, getenv func(string) string, logger *slog.Logger) (sensorhub.Config, error) {
	pool, err := pgxpool.New(context.Background(), cmp.Or(getenv("DATABASE_URL"), "postgres://service@127.0.0.1:5432/sensorhub"))
	if err != nil {
		return sensorhub.Config{}, err
	}
	lc.Append(fx.StopHook(pool.Close))
	opts, err := goredis.ParseURL(cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		return sensorhub.Config{}, err
	}
	// This program runs no outbox forwarder (cmd/sensorhub does), so it
	// writes no events that would pile up unforwarded.
	sink, err := postgres.New(postgres.Config{DB: pool, Logger: logger, DisableEvents: true})
	if err != nil {
		return sensorhub.Config{}, err
	}
	stream := cmp.Or(getenv("SENSORHUB_STREAM"), sensorhub.DefaultStream)
	transport, err := redis.New(redis.Config{Options: opts, Stream: stream, Logger: logger})
	if err != nil {
		return sensorhub.Config{}, err
	}
	lc.Append(fx.StopHook(transport.Close))
	return sensorhub.Config{
		Subscriber: transport.Subscriber(), Publisher: transport.PoisonPublisher(), PoisonStream: transport.PoisonStream(),
		Sink: sink, Stream: stream, Logger: logger,
	}, nil
}
