package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// targetRollupsRatio is issue 14's target: the drain with rollups on at
// least this fraction of the drain with them off.
const targetRollupsRatio = 0.8

// rollupTriggers are migration 0009's triggers on readings, which record
// the buckets every change touches; a phase with rollups off drops them,
// so that it pays nothing for rollups.
var rollupTriggers = []string{"readings_rollup_insert", "readings_rollup_update", "readings_rollup_delete"}

// rollupsOff turns rollups off in schema and in the binary's environment
// env: no worker, no invalidation log.
func (e *environment) rollupsOff(ctx context.Context, schema string, env []string) ([]string, error) {
	for _, trigger := range rollupTriggers {
		if _, err := e.admin.Exec(ctx, "ALTER TABLE "+schema+".readings DISABLE TRIGGER "+trigger); err != nil {
			return nil, fmt.Errorf("rollups off: %w", err)
		}
	}
	return append(env, "SENSORHUB_ROLLUPS=false"), nil
}

// waitRollups polls until schema has no pending rollup recomputation and
// returns how long that took, or fails after timeout.
func (e *environment) waitRollups(ctx context.Context, schema string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		var pending int
		if err := e.admin.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.rollup_invalidations`).Scan(&pending); err != nil {
			return 0, err
		}
		if pending == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%d rollup invalidations still pending after %s", pending, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// targetRollupLagP99 is issue 14's target for the rollup lag while live.
const targetRollupLagP99 = 5 * time.Second

// sampleRollupLag measures schema's rollup lag (the age of the oldest
// pending invalidation) every 100 ms until the returned function is
// called, which returns the samples' 99th percentile.
func (e *environment) sampleRollupLag(ctx context.Context, schema string) func() time.Duration {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []float64)
	go func() {
		var samples []float64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var lag float64
			if err := e.admin.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM clock_timestamp() - min(invalidated_at)), 0)::float8 FROM `+schema+`.rollup_invalidations`).Scan(&lag); err == nil {
				samples = append(samples, lag)
			}
			select {
			case <-ctx.Done():
				done <- samples
				return
			case <-tick.C:
			}
		}
	}()
	return func() time.Duration {
		cancel()
		samples := <-done
		if len(samples) == 0 {
			return 0
		}
		slices.Sort(samples)
		return seconds(samples[(len(samples)*99)/100])
	}
}
