package metrics_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/metrics"
)

type stats sensorhub.Stats

func (s stats) Stats() sensorhub.Stats { return sensorhub.Stats(s) }

func TestHubCollectorReadsStats(t *testing.T) {
	t.Parallel()
	c, err := metrics.NewHubCollector(stats{
		Received: 10, Stored: 6, Duplicates: 2, Conflicts: 1, Retried: 4,
		Poisoned: map[string]uint64{sensorhub.ReasonInvalidJSON: 3, "soil_too_wet": 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sensorhub_messages_received_total Messages the hub took from the stream, redeliveries included.
# TYPE sensorhub_messages_received_total counter
sensorhub_messages_received_total{source="stream"} 10
# HELP sensorhub_readings_stored_total Readings stored for the first time.
# TYPE sensorhub_readings_stored_total counter
sensorhub_readings_stored_total 6
# HELP sensorhub_readings_duplicates_total Readings dropped because they were already stored with the same value.
# TYPE sensorhub_readings_duplicates_total counter
sensorhub_readings_duplicates_total 2
# HELP sensorhub_readings_conflicts_total Readings dropped because their station, sensor and time were already stored with another value (the first write wins).
# TYPE sensorhub_readings_conflicts_total counter
sensorhub_readings_conflicts_total 1
# HELP sensorhub_retries_total In-process retries of messages after transient errors.
# TYPE sensorhub_retries_total counter
sensorhub_retries_total 4
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"sensorhub_messages_received_total", "sensorhub_readings_stored_total", "sensorhub_readings_duplicates_total",
		"sensorhub_readings_conflicts_total", "sensorhub_retries_total"); err != nil {
		t.Error(err)
	}

	poisoned := map[string]float64{}
	for _, m := range gather(t, c)["sensorhub_messages_poisoned_total"] {
		poisoned[m.labels["reason"]] = m.value
	}
	for reason, want := range map[string]float64{
		sensorhub.ReasonInvalidJSON:     3,
		"soil_too_wet":                  1, // a reason of a handler of the user's own
		sensorhub.ReasonValueOutOfRange: 0, // known reasons start at zero
		sensorhub.ReasonHandlerPanic:    0,
	} {
		if got, ok := poisoned[reason]; !ok || got != want {
			t.Errorf("poisoned{reason=%q} = %v (present %t), want %v", reason, got, ok, want)
		}
	}

	lint(t, c)
}

func TestHubCollectorRejectsNilHub(t *testing.T) {
	t.Parallel()
	if _, err := metrics.NewHubCollector(nil); err == nil {
		t.Fatal("NewHubCollector(nil) succeeded")
	}
}

// TestHubMetricsOfRunningHub runs a real hub over an in-memory transport
// with an instrumented group-commit sink, and reads what it did.
func TestHubMetricsOfRunningHub(t *testing.T) {
	t.Parallel()
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	reg := prometheus.NewPedanticRegistry()
	writer := &fakeWriter{}
	sink, err := metrics.InstrumentSink(writer, reg)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := sensorhub.New(sensorhub.Config{Subscriber: pubsub, Publisher: pubsub, Sink: sink, Logger: discardLogger()}, handlers.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	hubMetrics, err := metrics.NewHubCollector(hub)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(hubMetrics)
	if err := hub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Stop(ctx)
	})

	for _, payload := range []string{
		`{"sensor":"temperature","value":14,"timestamp":"2024-12-01T12:00:00Z"}`,
		`{"sensor":"humidity","value":55,"timestamp":"2024-12-01T12:00:00Z"}`,
		`[{"sensor":"pressure","value":1013,"timestamp":"2024-12-01T12:00:00Z"},{"sensor":"pressure","value":1014,"timestamp":"2024-12-01T12:01:00Z"}]`,
		`not json`,
	} {
		if err := pubsub.Publish(sensorhub.DefaultStream, message.NewMessage(watermill.NewUUID(), []byte(payload))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s := hub.Stats(); s.Stored < 4 || s.Poisoned[sensorhub.ReasonInvalidJSON] < 1; s = hub.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("hub stats %+v, want 4 stored and 1 poisoned", s)
		}
		time.Sleep(10 * time.Millisecond)
	}

	got := gather(t, reg)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sensorhub_messages_received_total", map[string]string{"source": "stream"}, 4},
		{"sensorhub_readings_stored_total", nil, 4},
		{"sensorhub_messages_poisoned_total", map[string]string{"reason": "invalid_json"}, 1},
		{"sensorhub_batch_size_sum", nil, 4},
		{"sensorhub_sink_errors_total", map[string]string{"kind": "transient"}, 0},
	} {
		if v, ok := got.value(c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %t), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if writer.batchCalls() == 0 {
		t.Error("the hub never called WriteBatches: the instrumented sink hid group commit")
	}
	if n, _ := got.value("sensorhub_batch_size_count", nil); n != float64(writer.batchCalls()+writer.writeCalls()) {
		t.Errorf("batch size observed %v times, want one per call (%d WriteBatches, %d Write)", n, writer.batchCalls(), writer.writeCalls())
	}
}

// fakeWriter is a BatchWriter that stores everything, or fails with err.
type fakeWriter struct {
	mu             sync.Mutex
	err            error
	writes, groups int
}

func (w *fakeWriter) Write(_ context.Context, b sensorhub.Batch) (sensorhub.WriteResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.err != nil {
		return sensorhub.WriteResult{}, w.err
	}
	return sensorhub.WriteResult{Stored: len(b.Readings)}, nil
}

func (w *fakeWriter) WriteBatches(_ context.Context, bs []sensorhub.Batch) ([]sensorhub.WriteResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.groups++
	if w.err != nil {
		return nil, w.err
	}
	res := make([]sensorhub.WriteResult, len(bs))
	for i, b := range bs {
		res[i] = sensorhub.WriteResult{Stored: len(b.Readings)}
	}
	return res, nil
}

func (w *fakeWriter) writeCalls() int { w.mu.Lock(); defer w.mu.Unlock(); return w.writes }
func (w *fakeWriter) batchCalls() int { w.mu.Lock(); defer w.mu.Unlock(); return w.groups }

var _ sensorhub.BatchWriter = (*fakeWriter)(nil)
