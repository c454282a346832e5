package background_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/background"
)

type key struct{}

func TestRunnerRunsLoopsUntilStop(t *testing.T) {
	t.Parallel()
	var r background.Runner
	if err := r.Stop(t.Context()); err != nil {
		t.Fatalf("Stop before Start = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
	values := make(chan any, 2)
	loop := func(ctx context.Context) {
		values <- ctx.Value(key{})
		<-ctx.Done()
	}
	if err := r.Start(ctx, loop, loop); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, loop); !errors.Is(err, background.ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	for range 2 {
		if v := <-values; v != "v" {
			t.Fatalf("loop saw value %v, want the start context's values", v)
		}
	}
	cancel() // the start context's end does not stop the loops
	if err := r.Stop(t.Context()); err != nil {
		t.Fatalf("Stop = %v, want the loops stopped", err)
	}
	if err := r.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop = %v, want nil", err)
	}
}

func TestStopGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	var r background.Runner
	release := make(chan struct{})
	defer close(release)
	if err := r.Start(t.Context(), func(context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := r.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the deadline: the loop ignores cancellation", err)
	}
}
