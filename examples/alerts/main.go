// Command alerts is a downstream consumer of sensorhub's events: it reads
// the events stream through a consumer group of its own and prints every
// threshold alert (threshold.crossed events), once per event even when the
// stream delivers one twice.
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/alerts
//
// Run sensorhub with rules, e.g. SENSORHUB_THRESHOLDS='temperature>30/28' or
// `sensorhub rule add 'temperature>30/28'`. An alert comes once the reorder
// window (SENSORHUB_REORDER_WINDOW, 10 s of device time) has passed after
// the reading that raised it.
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
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/events"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "alerts:", err)
		os.Exit(1)
	}
}

// run prints alerts until ctx ends. SENSORHUB_EVENTS_STREAM names the
// stream (default sensor_events), ALERTS_GROUP the consumer group (default
// alerts).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts, err := goredis.ParseURL(cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	// MaxInFlight 1: alerts print in the order sensorhub committed them.
	stream := cmp.Or(getenv("SENSORHUB_EVENTS_STREAM"), sensorhub.DefaultEventsStream)
	transport, err := redis.New(redis.Config{
		Options: opts, Stream: stream, Group: cmp.Or(getenv("ALERTS_GROUP"), "alerts"), Consumer: "alerts",
		MaxInFlight: 1, BlockTime: 200 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer transport.Close()
	c, err := events.NewConsumer(events.Config{Subscriber: transport.Subscriber(), Stream: stream, Logger: logger})
	if err != nil {
		return err
	}
	events.On(c, sensorhub.EventThresholdCrossed, func(_ context.Context, _ sensorhub.Event, a threshold.Crossed) error {
		state := "CLEARED"
		if a.Active {
			state = "ALERT"
		}
		_, err := fmt.Fprintf(stdout, "%s %s %s %v %s (%s, rule %s) at %s\n",
			state, a.Station, a.Sensor, a.Value, a.Unit, a.Direction, a.Rule, a.Time.Format(time.RFC3339))
		return err
	})
	fmt.Fprintf(stdout, "watching %s for threshold alerts\n", stream)
	return c.Run(ctx)
}
