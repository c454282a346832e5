package sensorhub

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// retryWait is the backoff between attempts at a message, or at the
// messages of a bundle, that failed with a transient error: RetryInterval,
// then twice as long each time up to MaxRetryBackoff, each wait randomised
// by ±20 %.
type retryWait struct{ backoff *backoff.ExponentialBackOff }

func (h *Hub) newRetryWait() retryWait {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     h.cfg.RetryInterval,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         h.cfg.MaxRetryBackoff,
	}
	b.Reset()
	return retryWait{b}
}

// next waits for the next attempt. It reports false when ctx ends or the
// hub stops first.
func (w retryWait) next(ctx context.Context, stopped <-chan struct{}) bool {
	t := time.NewTimer(w.backoff.NextBackOff())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stopped:
		return false
	}
}
