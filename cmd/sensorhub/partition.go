package main

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
)

// partitionModule runs the maintainer of the partitions of readings with
// the application (every replica may run one). A failed run is logged and
// tried again; it does not make the service unhealthy, since readings
// still have the default partition. The sink's part is in newSink.
var partitionModule = fx.Invoke(startPartitionMaintainer)

func startPartitionMaintainer(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, _ *schemaGuard, logger *slog.Logger) error {
	m, err := partition.NewMaintainer(partition.Config{DB: pool, Retention: cfg.rawRetention, Logger: logger})
	if err != nil {
		return err
	}
	lc.Append(fx.StartStopHook(m.Start, m.Stop))
	return nil
}
