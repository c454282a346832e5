package qc_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// pipeline, pool and client a test makes must be closed by its end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
