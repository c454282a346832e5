package sensorhub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordingWriter is a BatchWriter that records the groups it is given and
// stores every reading once per station.
type recordingWriter struct {
	mu     sync.Mutex
	groups [][]Batch
	fail   func(batches []Batch) error
}

func (w *recordingWriter) WriteBatches(_ context.Context, batches []Batch) ([]WriteResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		if err := w.fail(batches); err != nil {
			return nil, err
		}
	}
	w.groups = append(w.groups, batches)
	res := make([]WriteResult, len(batches))
	for i, b := range batches {
		res[i].Stored = len(b.Readings)
	}
	return res, nil
}

func (w *recordingWriter) Write(ctx context.Context, batch Batch) (WriteResult, error) {
	res, err := w.WriteBatches(ctx, []Batch{batch})
	if err != nil {
		return WriteResult{}, err
	}
	return res[0], nil
}

func (w *recordingWriter) groupCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.groups)
}

func readings(station string, n int) Batch {
	out := make([]Reading, n)
	for i := range out {
		out[i] = Reading{Station: station, Sensor: "temperature", Time: time.Unix(int64(i), 0), Value: 1, Unit: "Cel"}
	}
	return Batch{Readings: out}
}

func startBatcher(t *testing.T, w BatchWriter, cfg BatchConfig, inFlight func() int) *batcher {
	t.Helper()
	b, err := newBatcher(w, cfg, inFlight)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// writeConcurrently runs n writes of size readings each at once and returns
// their results.
func writeConcurrently(b *batcher, n, size int) ([]WriteResult, []error) {
	results, errs := make([]WriteResult, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = b.Write(context.Background(), readings(string(rune('a'+i%26)), size))
		})
	}
	wg.Wait()
	return results, errs
}

func TestBatcherCommitsConcurrentWritesTogether(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := startBatcher(t, w, BatchConfig{MaxWait: 200 * time.Millisecond, Writers: 1, Shards: 1}, func() int { return 20 })
	results, errs := writeConcurrently(b, 20, 3)
	for i := range results {
		if errs[i] != nil || results[i].Stored != 3 {
			t.Fatalf("write %d = %+v, %v; want 3 stored", i, results[i], errs[i])
		}
	}
	if got := w.groupCount(); got != 1 {
		t.Errorf("%d transactions for 20 concurrent writes, want 1 (all in flight arrived)", got)
	}
}

func TestBatcherFlushesAtMaxReadings(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := startBatcher(t, w, BatchConfig{MaxReadings: 10, MaxWait: time.Hour, Writers: 1, Shards: 1}, nil)
	_, errs := writeConcurrently(b, 20, 5)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := w.groupCount(); got != 10 {
		t.Errorf("%d transactions, want 10 groups of 2 writes x 5 readings", got)
	}
}

// TestBatcherKeepsAWriteAllTogether writes two bundles of 40 one-reading
// messages at once into groups of at most 10 readings: each bundle is
// committed whole, in one group, its messages in order and not mixed with
// the other's, as a stream read must be for its series to be committed in
// device-time order.
func TestBatcherKeepsAWriteAllTogether(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := startBatcher(t, w, BatchConfig{MaxReadings: 10, MaxWait: time.Millisecond, Writers: 1, Shards: 1}, nil)
	var wg sync.WaitGroup
	for _, station := range []string{"a", "b"} {
		wg.Go(func() {
			batches := make([]Batch, 40)
			for i := range batches {
				batches[i] = Batch{Readings: []Reading{{Station: station, Sensor: "temperature", Time: time.Unix(int64(i), 0), Value: 1, Unit: "Cel"}}}
			}
			results, errs := b.WriteAll(t.Context(), batches)
			for i := range batches {
				if errs[i] != nil || results[i].Stored != 1 {
					t.Errorf("%s: write %d = %+v, %v; want 1 stored", station, i, results[i], errs[i])
				}
			}
		})
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for g, group := range w.groups {
		if len(group) != 40 {
			t.Errorf("group %d holds %d writes, want a bundle's 40", g, len(group))
			continue
		}
		for i, batch := range group {
			if r := batch.Readings[0]; r.Station != group[0].Readings[0].Station || r.Time.Unix() != int64(i) {
				t.Errorf("group %d, write %d: %s at %d; want %s at %d", g, i, r.Station, r.Time.Unix(), group[0].Readings[0].Station, i)
			}
		}
	}
	if len(w.groups) != 2 {
		t.Errorf("%d groups, want one per bundle", len(w.groups))
	}
}

func TestBatcherFlushesAfterMaxWait(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	// inFlight says more writes are coming that never do: only MaxWait ends the group.
	b := startBatcher(t, w, BatchConfig{MaxWait: 20 * time.Millisecond}, func() int { return 100 })
	start := time.Now()
	if _, err := b.Write(t.Context(), readings("a", 1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("flushed after %s, before MaxWait", d)
	}
}

func TestBatcherFailsEveryWriteOfAFailedFlush(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection refused")
	w := &recordingWriter{fail: func([]Batch) error { return boom }}
	b := startBatcher(t, w, BatchConfig{MaxWait: 50 * time.Millisecond}, func() int { return 5 })
	_, errs := writeConcurrently(b, 5, 2)
	for i, err := range errs {
		if !errors.Is(err, boom) || IsPermanent(err) {
			t.Errorf("write %d: err = %v, want the transient flush error", i, err)
		}
	}
}

func TestBatcherBacksOffWhileFlushesFail(t *testing.T) {
	t.Parallel()
	const backoff, maxBackoff = 20 * time.Millisecond, 100 * time.Millisecond
	var down atomic.Bool
	down.Store(true)
	var flushes atomic.Int32
	w := &recordingWriter{fail: func([]Batch) error {
		flushes.Add(1)
		if down.Load() {
			return errors.New("connection reset by peer")
		}
		return nil
	}}
	b := startBatcher(t, w, BatchConfig{MaxWait: time.Millisecond, Backoff: backoff, MaxBackoff: maxBackoff}, nil)

	// 20 writers that retry at once, the worst case of retries: without a
	// pause between flushes they would make one every MaxWait.
	const outage = 600 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), outage)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := b.Write(ctx, readings(string(rune('a'+i)), 1)); err == nil {
					t.Error("a write succeeded while every flush fails")
					return
				}
			}
		})
	}
	wg.Wait()
	// Pauses of 20, 40, 80, then 100 ms: 8 in 600 ms, each followed by at
	// most one flush per writer.
	if n := flushes.Load(); n > 2*int32(outage/backoff)/3 {
		t.Errorf("%d flushes in %s of failures, want them paced by the backoff", n, outage)
	}
	t.Logf("%d flushes in %s of failures", flushes.Load(), outage)

	down.Store(false)
	start := time.Now()
	if _, err := b.Write(t.Context(), readings("z", 1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > maxBackoff+50*time.Millisecond {
		t.Errorf("the first write after the failures took %s, want at most MaxBackoff %s", d, maxBackoff)
	}
	// A commit ends the backoff.
	start = time.Now()
	if _, err := b.Write(t.Context(), readings("y", 1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > backoff {
		t.Errorf("a write after a commit took %s, want no pause", d)
	}
}

func TestBatcherIsolatesAPermanentError(t *testing.T) {
	t.Parallel()
	// The database rejects any transaction holding station "c".
	w := &recordingWriter{fail: func(batches []Batch) error {
		for _, b := range batches {
			for _, r := range b.Readings {
				if r.Station == "c" {
					return Permanent(ReasonDatabaseRejected, errors.New("22021: invalid byte sequence"))
				}
			}
		}
		return nil
	}}
	b := startBatcher(t, w, BatchConfig{MaxWait: 50 * time.Millisecond}, func() int { return 5 })
	results, errs := writeConcurrently(b, 5, 2)
	for i := range 5 {
		station := string(rune('a' + i))
		switch {
		case station == "c" && ReasonOf(errs[i]) != ReasonDatabaseRejected:
			t.Errorf("write of station c: err = %v, want database_rejected", errs[i])
		case station != "c" && (errs[i] != nil || results[i].Stored != 2):
			t.Errorf("write of station %s = %+v, %v; want stored despite c", station, results[i], errs[i])
		}
	}
}

func TestBatcherWriteHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int32
	w := &recordingWriter{fail: func([]Batch) error {
		calls.Add(1)
		<-release
		return nil
	}}
	b := startBatcher(t, w, BatchConfig{Writers: 1}, nil)
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Write(ctx, readings("a", 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestBatcherKeepsEventsWithTheirBatch(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := startBatcher(t, w, BatchConfig{MaxWait: 200 * time.Millisecond, Writers: 1, Shards: 1}, func() int { return 3 })
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			batch := readings(string(rune('a'+i)), i) // the first one carries only its event
			e, err := NewEvent("test.probe", 1, map[string]int{"i": i})
			if err != nil {
				t.Error(err)
				return
			}
			batch.Events = []Event{e}
			if _, err := b.Write(context.Background(), batch); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if w.groupCount() != 1 {
		t.Fatalf("%d transactions, want 1", w.groupCount())
	}
	for _, batch := range w.groups[0] {
		var p struct{ I int }
		if len(batch.Events) != 1 || batch.Events[0].Decode(&p) != nil || p.I != len(batch.Readings) {
			t.Errorf("batch with %d readings carries events %v, want its own one", len(batch.Readings), batch.Events)
		}
	}
}

func TestNewBatcherRejectsBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := newBatcher(nil, BatchConfig{}, nil); err == nil {
		t.Error("nil writer accepted")
	}
	if _, err := newBatcher(&recordingWriter{}, BatchConfig{MaxReadings: -1, MaxWait: -1}, nil); err == nil {
		t.Error("negative limits accepted")
	}
}

// barrierWriter is a recordingWriter whose transactions each wait until
// want of them are under way, or give up after a second.
type barrierWriter struct {
	recordingWriter
	want    int32
	started atomic.Int32
	all     chan struct{}
	overlap atomic.Bool
}

func (w *barrierWriter) WriteBatches(ctx context.Context, batches []Batch) ([]WriteResult, error) {
	if w.started.Add(1) == w.want {
		close(w.all)
	}
	select {
	case <-w.all:
		w.overlap.Store(true)
	case <-time.After(time.Second):
	}
	return w.recordingWriter.WriteBatches(ctx, batches)
}

func TestBatcherWritesAGroupAsOneTransactionPerShardAtOnce(t *testing.T) {
	t.Parallel()
	const shards = 3
	w := &barrierWriter{want: shards, all: make(chan struct{})}
	b := startBatcher(t, w, BatchConfig{MaxWait: 200 * time.Millisecond, Writers: 1, Shards: shards, ShardFrom: 1}, func() int { return 26 })
	results, errs := writeConcurrently(b, 26, 2) // stations a…z
	for i := range results {
		if errs[i] != nil || results[i].Stored != 2 {
			t.Fatalf("write %d = %+v, %v; want 2 stored", i, results[i], errs[i])
		}
	}
	if got := w.groupCount(); got != shards {
		t.Fatalf("%d transactions for one group of 26 stations, want one per shard (%d)", got, shards)
	}
	if !w.overlap.Load() {
		t.Error("the shards' transactions ran one after the other, want them at once")
	}
	seen := map[string]int{}
	for i, group := range w.groups {
		for _, batch := range group {
			station := batch.Readings[0].Station
			if j, ok := seen[station]; ok && j != i {
				t.Errorf("station %s written in transactions %d and %d, want one", station, j, i)
			}
			seen[station] = i
		}
	}
	if len(seen) != 26 {
		t.Errorf("%d stations written, want 26", len(seen))
	}
}

func TestBatcherWritesAGroupSmallerThanShardFromInOneTransaction(t *testing.T) {
	t.Parallel()
	const shards = 3
	w := &recordingWriter{}
	b := startBatcher(t, w, BatchConfig{MaxWait: 200 * time.Millisecond, Writers: 1, Shards: shards, ShardFrom: 53}, func() int { return 26 })
	for _, tc := range []struct {
		size, transactions int
	}{
		{2, 1},      // 52 readings
		{3, shards}, // 78 readings
	} {
		before := w.groupCount()
		_, errs := writeConcurrently(b, 26, tc.size) // stations a…z
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if got := w.groupCount() - before; got != tc.transactions {
			t.Errorf("a group of 26 writes of %d readings took %d transactions, want %d", tc.size, got, tc.transactions)
		}
	}
}
