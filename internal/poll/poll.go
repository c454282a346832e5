// Package poll lets tests wait for what happens asynchronously (a row
// stored, an event forwarded, a service healthy) with a deadline instead of
// a fixed sleep.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until checks its condition.
const Interval = 10 * time.Millisecond

// Until calls cond every Interval until it returns true. When it has not
// within timeout, it fails tb, naming what it waited for.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}
