// Package background runs the loops of a component that starts once and
// stops on demand, such as the sinks' sweeper, rollup worker, partition
// maintainer and outbox forwarder.
package background

import (
	"context"
	"errors"
	"sync"
)

// ErrStarted is Start's error for a Runner that started before.
var ErrStarted = errors.New("already started")

// Runner runs loops in goroutines from Start until Stop. The zero value is
// ready to use; a Runner starts once. It is safe for concurrent use.
type Runner struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{} // closed when every loop returned; nil before Start
}

// Start runs each loop in a goroutine of its own and returns at once. The
// loops get a context that keeps ctx's values but not its cancellation or
// deadline: Stop cancels it.
func (r *Runner) Start(ctx context.Context, loops ...func(context.Context)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		return ErrStarted
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	r.done = done
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Go(func() { loop(ctx) })
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return nil
}

// Stop cancels the loops and waits until every one returned, or until ctx
// ends, then returns ctx's error. Before Start it does nothing; it may be
// called more than once.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
