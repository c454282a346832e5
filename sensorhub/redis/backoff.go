package redis

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Failed Redis commands are retried after a backoff between these bounds.
const (
	minRetryBackoff = 100 * time.Millisecond
	maxRetryBackoff = 5 * time.Second
)

// newBackoff returns the pacing of every retry loop of the package: waits
// from initial, doubling up to max, without jitter and without end. Reset
// starts it over after a success.
func newBackoff(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: initial, MaxInterval: max, Multiplier: 2}
	b.Reset()
	return b
}

// sleep waits for d, or until stop is closed; it reports whether the whole
// of d passed.
func sleep(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
