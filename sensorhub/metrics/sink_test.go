package metrics_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
)

func readings(n int) []sensorhub.Reading { return make([]sensorhub.Reading, n) }

func TestInstrumentSinkObservesWrites(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	writer := &fakeWriter{}
	sink, err := metrics.InstrumentSink(writer, reg)
	if err != nil {
		t.Fatal(err)
	}
	bw, ok := sink.(sensorhub.BatchWriter)
	if !ok {
		t.Fatalf("instrumenting a BatchWriter returned %T, not a BatchWriter", sink)
	}
	ctx := t.Context()
	if res, err := bw.Write(ctx, sensorhub.Batch{Readings: readings(3)}); err != nil || res.Stored != 3 {
		t.Fatalf("Write = %+v, %v", res, err)
	}
	res, err := bw.WriteBatches(ctx, []sensorhub.Batch{{Readings: readings(2)}, {Readings: readings(5)}})
	if err != nil || len(res) != 2 || res[1].Stored != 5 {
		t.Fatalf("WriteBatches = %+v, %v", res, err)
	}
	writer.err = sensorhub.Permanent(sensorhub.ReasonDatabaseRejected, errors.New("check violation"))
	if _, err := bw.Write(ctx, sensorhub.Batch{Readings: readings(1)}); !sensorhub.IsPermanent(err) {
		t.Fatalf("Write did not pass the permanent error through: %v", err)
	}
	writer.err = errors.New("connection refused")
	if _, err := bw.WriteBatches(ctx, []sensorhub.Batch{{Readings: readings(4)}}); err == nil || sensorhub.IsPermanent(err) {
		t.Fatalf("WriteBatches did not pass the transient error through: %v", err)
	}

	got := gather(t, reg)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		// 3, 2+5 in one call, 1 and 4 failed: every call is observed.
		{"sensorhub_batch_size_count", nil, 4},
		{"sensorhub_batch_size_sum", nil, 3 + 7 + 1 + 4},
		{"sensorhub_commit_duration_seconds_count", nil, 4},
		{"sensorhub_sink_errors_total", map[string]string{"kind": "permanent"}, 1},
		{"sensorhub_sink_errors_total", map[string]string{"kind": "transient"}, 1},
	} {
		if v, ok := got.value(c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %t), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if d, _ := got.value("sensorhub_commit_duration_seconds_sum", nil); d <= 0 {
		t.Errorf("commit duration sum = %v, want > 0", d)
	}
	problems, err := prometheusLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s", p)
	}
}

func TestInstrumentSinkKeepsPlainSinkPlain(t *testing.T) {
	t.Parallel()
	sink, err := metrics.InstrumentSink(&sensorhubtest.Sink{}, prometheus.NewPedanticRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sink.(sensorhub.BatchWriter); ok {
		t.Fatal("instrumenting a plain Sink returned a BatchWriter")
	}
}

func TestInstrumentSinkErrors(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	if _, err := metrics.InstrumentSink(nil, reg); err == nil {
		t.Error("nil sink accepted")
	}
	if _, err := metrics.InstrumentSink(&fakeWriter{}, nil); err == nil {
		t.Error("nil registerer accepted")
	}
	if _, err := metrics.InstrumentSink(&fakeWriter{}, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.InstrumentSink(&fakeWriter{}, reg); err == nil {
		t.Error("a second sink on one registry accepted: its metrics would clash")
	}
}

func TestInstrumentedSinkPassesContext(t *testing.T) {
	t.Parallel()
	sink, err := metrics.InstrumentSink(ctxSink{}, prometheus.NewPedanticRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sink.Write(ctx, sensorhub.Batch{Readings: readings(1)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v, want the sink's context error", err)
	}
}

type ctxSink struct{}

func (ctxSink) Write(ctx context.Context, _ sensorhub.Batch) (sensorhub.WriteResult, error) {
	return sensorhub.WriteResult{}, ctx.Err()
}
