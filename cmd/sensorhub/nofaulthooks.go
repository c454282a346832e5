//go:build !faulthooks

package main

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sinks/postgres"
)

// faultHooks is empty in the default build: the SIGKILL hooks of the fault
// tests are compiled in only with -tags faulthooks (faulthooks.go), so a
// production binary neither reads SENSORHUB_TEST_* variables nor carries
// code that kills itself.
type faultHooks struct{}

func loadFaultHooks(*env) faultHooks { return faultHooks{} }

var faultHooksModule = fx.Options()

func (faultHooks) sinkDB(pool postgres.DB, _ *slog.Logger) postgres.DB { return pool }
