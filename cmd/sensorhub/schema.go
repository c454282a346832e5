package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/migrations"
)

// Schema re-checks while the database does not answer back off from
// schemaRetryFirst, doubling up to schemaRetryMax.
const (
	schemaRetryFirst = 500 * time.Millisecond
	schemaRetryMax   = 10 * time.Second
)

// schemaGuard keeps the service off a database that misses migrations of
// this build (migrations.Check). A database that answers and misses one
// stops start-up with an error naming it. One that does not answer at
// start-up (an outage, or PostgreSQL still starting beside us) does not:
// the service starts and waits for it as for any outage, and the guard
// checks again in the background until the database answers; a missing
// migration then shuts the service down with exit code 1. Meanwhile writes
// to a missing table are transient errors, so nothing is poisoned.
type schemaGuard struct {
	pool       *pgxpool.Pool
	log        *slog.Logger
	shutdowner fx.Shutdowner

	mu     sync.Mutex
	err    error              // the missing migrations, found after start-up
	cancel context.CancelFunc // ends the background check; nil without one
	done   chan struct{}      // closed when the background check returns
}

func newSchemaGuard(lc fx.Lifecycle, pool *pgxpool.Pool, logger *slog.Logger, shutdowner fx.Shutdowner) *schemaGuard {
	g := &schemaGuard{pool: pool, log: logger, shutdowner: shutdowner}
	lc.Append(fx.Hook{OnStart: g.start, OnStop: g.stop})
	return g
}

func (g *schemaGuard) start(ctx context.Context) error {
	err := migrations.Check(ctx, g.pool)
	if err == nil || errors.Is(err, migrations.ErrNotMigrated) {
		return err
	}
	g.log.WarnContext(ctx, "schema not checked yet: the database does not answer; checking again until it does", "error", err)
	checkCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel, g.done = cancel, make(chan struct{})
	go g.await(checkCtx)
	return nil
}

// await checks the schema until the database answers or ctx ends.
func (g *schemaGuard) await(ctx context.Context) {
	defer close(g.done)
	retry := &backoff.ExponentialBackOff{InitialInterval: schemaRetryFirst, Multiplier: 2, MaxInterval: schemaRetryMax}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := migrations.Check(ctx, g.pool)
		if errors.Is(err, migrations.ErrNotMigrated) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(retry), backoff.WithMaxElapsedTime(0))
	if !errors.Is(err, migrations.ErrNotMigrated) {
		return // checked, or stopping
	}
	g.mu.Lock()
	g.err = err
	g.mu.Unlock()
	g.log.ErrorContext(ctx, "stopping: the database answers but misses migrations", "error", err)
	_ = g.shutdowner.Shutdown(fx.ExitCode(exitFailure))
}

func (g *schemaGuard) stop(context.Context) error {
	if g.cancel != nil {
		g.cancel()
		<-g.done
	}
	return nil
}

// Err returns the missing migrations the background check found, if any.
func (g *schemaGuard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
