// Package rollup keeps the rollup tables readings_5m, readings_1h and
// readings_1d (DESIGN.md §14, docs/rollups.md) right for late, corrected
// and flagged data, exactly once across replicas.
//
// Three pieces:
//
//   - Migration 0009's statement-level triggers on readings record, in the
//     transaction of every change (the sink's inserts, calibration,
//     QC flags, derived readings, deletes), the (station, sensor, 5-minute
//     bucket) it touched in the invalidation log rollup_invalidations. A
//     trigger catches every writer, including ones that do not go through
//     the sink, which an Observer of the sink could not.
//   - A Worker, one per replica, deletes pending invalidations, then
//     recomputes the 5-minute buckets from readings, or appends the
//     readings stored after a bucket's newest to it when nothing else
//     changed it (migration 0011), then their UTC hours and station-local
//     days from their children, and deletes the invalidations, in one
//     transaction.
//   - Rebuild recomputes a range from readings, for `sensorhub rollup
//     rebuild`.
//
// How each sensor type aggregates is its sensorhub.SensorType.Aggregation:
// instant (count, mean, minimum and maximum with their times), amount
// (sum, largest single amount with its time), vector (the mean direction,
// weighted by SensorType.WeightedBy's reading of the same time), last
// (latest value with its time). A sensor no registered type names, such
// as a derived type of another package, aggregates as instant. Readings
// flagged 4 (fail) count nowhere. coverage is the bucket's count ÷ the
// readings expected from the series' expected interval (sensor_status).
//
//	w, err := rollup.NewWorker(rollup.Config{DB: pool, Types: handlers.Builtin(), Zone: "Europe/Berlin"})
//	...
//	err = w.Start(ctx)
//	defer w.Stop(ctx)
//	...
//	err = w.Check(5 * time.Minute) // a health check on the rollup lag
//
// Exactly once: a station's invalidations are worked on by one transaction
// at a time (a transaction-level advisory lock per station, one of 256
// that the stations share, taken without waiting, so replicas share the
// stations). The invalidation log is append-only (migration 0017): a
// change committed after a pass deleted a bucket's invalidations records
// one the pass does not see, so the bucket stays pending. Neither a
// worker nor a writer changes a row the other may hold, so neither waits
// for the other and the two cannot deadlock. Package
// rolluptest checks the tables against an independent recomputation.
package rollup
