package rollup_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/handlers"
)

// builtinTypes are the registered types of the tests.
var builtinTypes = handlers.Builtin()

// quiet drops the logs of the sinks and workers of the tests: the oracle
// test's random readings conflict on purpose.
var quiet = slog.New(slog.DiscardHandler)

// TestMain fails the package's tests when a goroutine outlives them: every
// worker and pool a test starts must be stopped by its end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
