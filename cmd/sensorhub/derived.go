package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// derivedConfig is the derived-quantities part of the configuration
// (docs/derived.md).
type derivedConfig struct {
	enabled   bool
	tolerance time.Duration
}

func loadDerivedConfig(e *env) derivedConfig {
	return derivedConfig{
		enabled:   e.boolean("SENSORHUB_DERIVED", true),
		tolerance: e.duration("SENSORHUB_DERIVED_TOLERANCE", derived.DefaultTolerance),
	}
}

// processor returns the derived quantities' processor, nil when they are
// off.
func (c derivedConfig) processor() (*derived.Processor, error) {
	if !c.enabled {
		return nil, nil
	}
	return derived.New(derived.Config{Tolerance: c.tolerance})
}

// followElevation computes the derived values of station again after its
// elevation changed (the sea-level pressures), in one transaction holding
// the station's lock, and announces what changed.
func (c derivedConfig) followElevation(ctx context.Context, pool *pgxpool.Pool, station string) error {
	p, err := c.processor()
	if p == nil || err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("derived: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := postgres.LockStation(ctx, tx, station); err != nil {
		return err
	}
	events, err := p.Rebuild(ctx, tx, station, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	if err := outbox.Insert(ctx, tx, events); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("derived: commit: %w", err)
	}
	return nil
}
