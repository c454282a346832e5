// Command frostpoint adds a derived quantity of its own to sensorhub: the
// frost point, the temperature at which the air's water vapour would
// deposit as frost (over ice, where the dew point is over water). It is a
// derived.Quantity beside the built-in ones, computed from each station's
// temperature and the humidity nearest to it within 60 s, stored as
// readings of type frost_point with derived = true.
//
//	DATABASE_URL=postgres://service@127.0.0.1:5432/sensorhub go run ./examples/frostpoint
package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sensorhub/weather"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
)

// frostPoint inverts the Magnus formula over ice (WMO-No. 8, Annex 4.B:
// ew = 6.112 exp(22.46 t / (272.62 + t)) hPa) at the air's vapour pressure.
var frostPoint = derived.Quantity{
	Name: "frost_point", Unit: "Cel", Primary: "temperature", Partners: []string{"humidity"},
	Compute: func(in derived.Inputs) (float64, bool) {
		e := weather.VapourPressure(in.Values["temperature"], in.Values["humidity"])
		if e <= 0 {
			return 0, false
		}
		g := math.Log(e / 6.112)
		return 272.62 * g / (22.46 - g), true
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "frostpoint:", err)
		os.Exit(1)
	}
}

// run consumes readings until ctx ends, computing the built-in derived
// quantities and the frost point.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	pool, err := pgxpool.New(ctx, cmp.Or(getenv("DATABASE_URL"), "postgres://service@127.0.0.1:5432/sensorhub"))
	if err != nil {
		return err
	}
	defer pool.Close()
	opts, err := goredis.ParseURL(cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		return err
	}
	types := append(handlers.Builtin(), sensorhub.SensorType{Name: "frost_point", Unit: "Cel", Min: -100, Max: 100})
	p, err := pipeline.New(pipeline.Config{
		DB: pool, Redis: opts, Stream: getenv("SENSORHUB_STREAM"), Events: true, EventsStream: getenv("SENSORHUB_EVENTS_STREAM"),
		Derived: &derived.Config{Quantities: append(derived.Builtin(), frostPoint)},
	}, types...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "computing frost points from temperature and humidity")
	return p.Run(ctx)
}
