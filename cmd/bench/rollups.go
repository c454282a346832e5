package main

import (
	"context"
	"fmt"
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
