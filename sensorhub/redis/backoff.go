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

// every runs f every interval until stop is closed, and backs off while f
// fails: after a failure, the next run waits for the package's backoff too
// (the next tick at least NextBackOff after the failure), so that a
// periodic loop never tries a failing Redis faster than a retry loop
// would. While f succeeds it runs on every tick.
func every(stop <-chan struct{}, interval time.Duration, f func() error) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	retry := newBackoff(minRetryBackoff, maxRetryBackoff)
	var notBefore time.Time
	for {
		select {
		case <-stop:
			return
		case now := <-ticker.C:
			if now.Before(notBefore) {
				continue
			}
		}
		if err := f(); err != nil {
			notBefore = time.Now().Add(retry.NextBackOff())
			continue
		}
		retry.Reset()
	}
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
