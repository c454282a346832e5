package poll_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	calls := 0
	poll.Until(t, time.Minute, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestUntilFailsNamingWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine, as it ends a test
		defer close(done)
		poll.Until(rec, 30*time.Millisecond, "never", func() bool { return false })
	}()
	<-done
	if want := "not within 30ms: never"; rec.failure != want {
		t.Fatalf("failure %q, want %q", rec.failure, want)
	}
}

// recorder records a Fatalf instead of failing the test.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
