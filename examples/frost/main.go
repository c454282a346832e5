// Command frost adds a rule of its own to sensorhub: a frost warning when a
// station's temperature stays below 0 °C for three readings in a row. The
// rule is a stateful processor of the Postgres sink (postgres.StepProcessor):
// it sees each station's temperatures in device-time order, whatever the
// order they arrive in within the reorder window, keeps its count in
// PostgreSQL, and emits a frost.warning event in the transaction that
// stores the reading, so a warning is neither lost nor repeated across
// restarts and replicas.
//
//	DATABASE_URL=postgres://service@127.0.0.1:5432/sensorhub go run ./examples/frost
//	redis-cli XADD sensor_stream '*' payload '{"sensor":"temperature","value":-1.5,"timestamp":"2024-12-01T06:00:00Z"}'
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

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sinks/postgres"
)

// frostState is the rule's state per station: how many readings in a row
// were below 0 °C.
type frostState struct{ Below int }

// FrostWarning is the payload of a frost.warning event: the third reading
// in a row below 0 °C.
type FrostWarning struct {
	Station string    `json:"station"`
	Time    time.Time `json:"ts"`
	Value   float64   `json:"value"`
}

// frostRule is the whole user-defined rule.
func frostRule() postgres.StepProcessor[frostState] {
	return postgres.StepProcessor[frostState]{
		ID: "frost", Sensors: []string{"temperature"},
		Step: func(s *frostState, r sensorhub.Reading, emit func(sensorhub.Event)) error {
			if r.Value >= 0 {
				s.Below = 0
				return nil
			}
			if s.Below++; s.Below != 3 {
				return nil
			}
			// A UUID derived from the reading: a replica or retry that
			// derives the warning again gives it the same one.
			e, err := sensorhub.NewReadingEvent(r, "frost.warning", 1, FrostWarning{Station: r.Station, Time: r.Time.UTC(), Value: r.Value})
			if err == nil {
				emit(e)
			}
			return err
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "frost:", err)
		os.Exit(1)
	}
}

// run consumes readings until ctx ends, with the built-in sensor types and
// the frost rule; events go to SENSORHUB_EVENTS_STREAM (default
// sensor_events).
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
	p, err := pipeline.New(pipeline.Config{
		DB: pool, Redis: opts, Stream: getenv("SENSORHUB_STREAM"), Events: true, EventsStream: getenv("SENSORHUB_EVENTS_STREAM"),
		Processors: []postgres.Processor{frostRule()}, Logger: logger,
	}, handlers.Builtin()...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "watching for frost: three temperatures in a row below 0 °C")
	return p.Run(ctx)
}
