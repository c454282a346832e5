//go:build faulthooks

package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
)

// faultHooks are fault injection points for the fault tests only
// (faults_test.go, README: Guarantees): the process kills itself with
// SIGKILL at a precise point of the commit path that a kill from outside
// could only hit by chance. They are compiled in only with -tags
// faulthooks, the build the tests of this package run (harness_test.go);
// the default build has the empty faultHooks of nofaulthooks.go. They are
// read from SENSORHUB_TEST_* variables, which are not part of the
// documented configuration; 0 disables a hook.
type faultHooks struct {
	// crashBeforeCommit kills the process as its Nth transaction is about
	// to commit: the batch's rows are written but not committed, and the
	// messages are not acked (SENSORHUB_TEST_CRASH_BEFORE_COMMIT).
	crashBeforeCommit int
	// crashAfterCommits kills the process right after its Nth committed
	// write, before the messages are acked and the events forwarded
	// (SENSORHUB_TEST_CRASH_AFTER_COMMITS).
	crashAfterCommits int
}

func loadFaultHooks(e *env) faultHooks {
	var h faultHooks
	if e.getenv("SENSORHUB_TEST_CRASH_BEFORE_COMMIT") != "" {
		h.crashBeforeCommit = e.positive("SENSORHUB_TEST_CRASH_BEFORE_COMMIT", 0)
	}
	if e.getenv("SENSORHUB_TEST_CRASH_AFTER_COMMITS") != "" {
		h.crashAfterCommits = e.positive("SENSORHUB_TEST_CRASH_AFTER_COMMITS", 0)
	}
	return h
}

// faultHooksModule installs the armed hooks.
var faultHooksModule = fx.Options(
	fx.Decorate(crashAfterCommits),
)

// sinkDB returns the database the sink writes through: pool, or pool with
// the crash-before-commit hook around its transactions.
func (h faultHooks) sinkDB(pool postgres.DB, logger *slog.Logger) postgres.DB {
	if h.crashBeforeCommit == 0 {
		return pool
	}
	logger.Warn("test fault hook armed: SIGKILL before a commit", "commit", h.crashBeforeCommit)
	return &crashingDB{DB: pool, at: int64(h.crashBeforeCommit)}
}

// crashingDB kills the process instead of sending its at-th COMMIT.
type crashingDB struct {
	postgres.DB
	at      int64
	commits atomic.Int64
}

func (db *crashingDB) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := db.DB.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &crashingTx{Tx: tx, db: db}, nil
}

type crashingTx struct {
	pgx.Tx
	db *crashingDB
}

func (tx *crashingTx) Commit(ctx context.Context) error {
	if tx.db.commits.Add(1) == tx.db.at {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; commit nothing meanwhile
	}
	return tx.Tx.Commit(ctx)
}

// crashAfterCommits installs the test-only fault hook of
// SENSORHUB_TEST_CRASH_AFTER_COMMITS around the hub's sink. It decorates
// the hub's configuration rather than the sensorhub.Sink, which fx lets
// only one decorator (the metrics) wrap.
func crashAfterCommits(cfg config, hub sensorhub.Config, logger *slog.Logger) (sensorhub.Config, error) {
	if cfg.faults.crashAfterCommits == 0 {
		return hub, nil
	}
	w, ok := hub.Sink.(sensorhub.BatchWriter)
	if !ok {
		return sensorhub.Config{}, errors.New("SENSORHUB_TEST_CRASH_AFTER_COMMITS: the sink does not group-commit")
	}
	logger.Warn("test fault hook armed: SIGKILL after a commit", "commits", cfg.faults.crashAfterCommits)
	hub.Sink = &crashingSink{BatchWriter: w, after: int64(cfg.faults.crashAfterCommits)}
	return hub, nil
}

// crashingSink kills the process right after its after-th successful
// write: committed, not yet acked, events not yet forwarded.
type crashingSink struct {
	sensorhub.BatchWriter
	after   int64
	commits atomic.Int64
}

func (s *crashingSink) Write(ctx context.Context, b sensorhub.Batch) (sensorhub.WriteResult, error) {
	res, err := s.BatchWriter.Write(ctx, b)
	s.committed(err)
	return res, err
}

func (s *crashingSink) WriteBatches(ctx context.Context, bs []sensorhub.Batch) ([]sensorhub.WriteResult, error) {
	res, err := s.BatchWriter.WriteBatches(ctx, bs)
	s.committed(err)
	return res, err
}

func (s *crashingSink) committed(err error) {
	if err == nil && s.commits.Add(1) == s.after {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
