package main

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
)

// partitionConfig is the partitioning part of the configuration
// (docs/growth.md).
type partitionConfig struct {
	// retention is how long raw readings are kept; zero keeps them forever.
	retention time.Duration
}

func loadPartitionConfig(e *env) partitionConfig {
	return partitionConfig{retention: e.retention("SENSORHUB_RAW_RETENTION")}
}

// retention reads a duration of zero or more: a Go duration (8760h), a
// number of days (730d), or 0. Unset is 0.
func (e *env) retention(name string) time.Duration {
	v := e.getenv(name)
	if v == "" || v == "0" {
		return 0
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour
		}
	} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	e.fail(name, "%q is not 0, a number of days such as 730d, or a positive duration such as 8760h", v)
	return 0
}

// partitionModule runs the maintainer of the partitions of readings with
// the application (every replica may run one). A failed run is logged and
// tried again; it does not make the service unhealthy, since readings
// still have the default partition. The sink's part is in newSink.
var partitionModule = fx.Invoke(startPartitionMaintainer)

func startPartitionMaintainer(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, _ *schemaGuard, logger *slog.Logger) error {
	m, err := partition.NewMaintainer(partition.Config{DB: pool, Retention: cfg.partition.retention, Logger: logger})
	if err != nil {
		return err
	}
	lc.Append(fx.StartStopHook(m.Start, m.Stop))
	return nil
}
