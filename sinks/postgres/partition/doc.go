// Package partition keeps the table readings partitioned by device time
// (docs/growth.md). Migration 0010 made readings a table partitioned by
// RANGE (ts) with a DEFAULT partition, readings_default, which holds any
// reading whose month has no partition of its own, so that no valid
// reading is ever refused for a missing partition. This package gives
// every UTC month its own partition, readings_pYYYY_MM for
// [YYYY-MM-01 00:00 UTC, next month):
//
//   - Ensure creates the partitions of a time range (say, before a bulk
//     load), moving into them whatever rows the default partition holds for
//     them.
//   - Sink wraps the Postgres sink and calls Ensure for a month the first
//     time a batch holds a reading of it, before the batch's transaction
//     begins: a backfill of 1985 gets its partitions as it arrives.
//   - Maintainer runs in the background of every replica: it creates the
//     partitions of the coming months ahead of time, moves rows that landed
//     in the default partition (a failed Ensure, a race with retention)
//     into their month's, and with a retention drops the partitions whose
//     whole range is older than the horizon.
//
// Every change of the partition layout is a short transaction under one
// advisory lock per schema (replicas and writers take turns) and a
// lock_timeout of LockTimeout: creating a partition is CREATE TABLE … LIKE
// and ATTACH PARTITION, which holds back the writers of readings (never
// its readers) for the moment it takes; a drop needs an ACCESS EXCLUSIVE
// lock on readings for a moment. Either gives up after LockTimeout rather
// than queue ahead of the writers for long, to try again later.
//
//	sink := partition.NewSink(postgresSink, pool, logger)
//	m, err := partition.NewMaintainer(partition.Config{DB: pool, Retention: 2 * 365 * 24 * time.Hour})
//	...
//	err = m.Start(ctx)
//	defer m.Stop(ctx)
package partition
