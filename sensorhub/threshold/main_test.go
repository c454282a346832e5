package threshold_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// hub a test makes must be stopped by its end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
