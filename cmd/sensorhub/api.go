package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sinks/postgres/api"
)

// apiConfig is the read API's part of the configuration (docs/api.md).
type apiConfig struct {
	// databaseURL is the API's own connection, e.g. as a role that can only
	// SELECT; empty: the service's pool.
	databaseURL string
	// token is the bearer token /api/ and / ask for; empty: none.
	token string
}

func loadAPIConfig(e *env) apiConfig {
	c := apiConfig{databaseURL: e.secret("SENSORHUB_API_DATABASE_URL"), token: e.secret("SENSORHUB_API_TOKEN")}
	if c.databaseURL != "" {
		if _, err := pgx.ParseConfig(c.databaseURL); err != nil {
			e.fail("SENSORHUB_API_DATABASE_URL", "not a valid PostgreSQL URL or key=value DSN (value not shown)")
		}
	}
	return c
}

// newAPI returns the read API and status page, served by startHTTPServer.
// It reads through its own pool when SENSORHUB_API_DATABASE_URL is set,
// else through the service's, and asks Redis for the page's queue figures.
func newAPI(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, client goredis.UniversalClient, t *redis.Transport, logger *slog.Logger) (*api.API, error) {
	db := pool
	if cfg.api.databaseURL != "" {
		pcfg, err := pgxpool.ParseConfig(cfg.api.databaseURL)
		if err != nil {
			return nil, errors.New("parse SENSORHUB_API_DATABASE_URL (value not shown)")
		}
		setPlanning(pcfg)
		db, err = pgxpool.NewWithConfig(context.Background(), pcfg)
		if err != nil {
			return nil, fmt.Errorf("api postgres pool: %w", err)
		}
		lc.Append(fx.StopHook(db.Close))
	}
	redisStats, err := metrics.NewRedisCollector(redisStatsConfig(cfg, client, t))
	if err != nil {
		return nil, err
	}
	return api.New(api.Config{
		DB:     db,
		Token:  cfg.api.token,
		Logger: logger,
		Queue: func(ctx context.Context) (api.QueueStats, error) {
			s, err := redisStats.Stats(ctx)
			return api.QueueStats{PoisonQueueLength: s.PoisonQueueLength, ConsumerLag: s.ConsumerLag}, err
		},
	})
}

// redisStatsConfig is the configuration of the Redis figures /metrics and
// the status page show.
func redisStatsConfig(cfg config, client goredis.UniversalClient, t *redis.Transport) metrics.RedisConfig {
	return metrics.RedisConfig{Client: client, Stream: cfg.stream, Group: cfg.group, PoisonStream: t.PoisonStream()}
}
