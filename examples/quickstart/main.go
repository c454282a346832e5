// Command quickstart embeds sensorhub in a program of its own: the built-in
// sensor types plus leaf_wetness, which announces wet leaves with an event,
// read from the Redis stream sensor_stream and stored into PostgreSQL.
//
//	DATABASE_URL=postgres://service@127.0.0.1:5432/sensorhub REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/quickstart
//	redis-cli XADD sensor_stream '*' payload '{"sensor":"leaf_wetness","value":80,"timestamp":"2024-12-01T12:00:00Z"}'
//	redis-cli XRANGE sensor_events - +
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/migrations"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
)

// leafWetness is a sensor type of our own: the share of the leaf that is wet.
var leafWetness = sensorhub.SensorType{Name: "leaf_wetness", Unit: "%", Min: 0, Max: 100,
	Handle: func(_ context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
		out := sensorhub.Batch{Readings: []sensorhub.Reading{r}}
		if r.Value < 50 {
			return out, nil
		}
		// The UUID comes from the reading: a redelivery gives the same event.
		e, err := sensorhub.NewReadingEvent(r, "leaf.wet", 1, map[string]any{"station": r.Station, "wetness": r.Value})
		out.Events = append(out.Events, e)
		return out, err
	}}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	pool, err := pgxpool.New(ctx, getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool, nil); err != nil {
		return err
	}
	opts, err := goredis.ParseURL(getenv("REDIS_URL"))
	if err != nil {
		return err
	}

	p, err := pipeline.New(pipeline.Config{DB: pool, Redis: opts, Stream: getenv("SENSORHUB_STREAM"),
		Events: true, EventsStream: getenv("SENSORHUB_EVENTS_STREAM")}, append(handlers.Builtin(), leafWetness)...)
	if err != nil {
		return err
	}
	return p.Run(ctx) // until SIGINT or SIGTERM
}
