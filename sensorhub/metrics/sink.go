package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Values of the kind label of sensorhub_sink_errors_total.
const (
	kindPermanent = "permanent"
	kindTransient = "transient"
)

// sinkMetrics are the metrics InstrumentSink registers. Names are a
// contract with dashboards: do not rename.
type sinkMetrics struct {
	batchSize      prometheus.Histogram
	commitDuration prometheus.Histogram
	errors         *prometheus.CounterVec
}

func newSinkMetrics() *sinkMetrics {
	m := &sinkMetrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sensorhub_batch_size",
			Help: "Readings per call to the sink: one message's, or under group commit those of several messages written in one transaction.",
			// 1 to 8192: the batcher flushes at 5000 readings by default.
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sensorhub_commit_duration_seconds",
			Help: "Time the sink took to write and commit, failed calls included.",
			// 0.5 ms to 16 s.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sensorhub_sink_errors_total",
			Help: "Failed calls to the sink, by kind: permanent (the message is poisoned) or transient (it is retried).",
		}, []string{"kind"}),
	}
	// Both kinds exist from the start, so that the first error shows in rate().
	m.errors.WithLabelValues(kindPermanent)
	m.errors.WithLabelValues(kindTransient)
	return m
}

func (m *sinkMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.batchSize.Describe(ch)
	m.commitDuration.Describe(ch)
	m.errors.Describe(ch)
}

func (m *sinkMetrics) Collect(ch chan<- prometheus.Metric) {
	m.batchSize.Collect(ch)
	m.commitDuration.Collect(ch)
	m.errors.Collect(ch)
}

// observe records one call that wrote readings and took since start.
func (m *sinkMetrics) observe(readings int, start time.Time, err error) {
	m.commitDuration.Observe(time.Since(start).Seconds())
	m.batchSize.Observe(float64(readings))
	switch {
	case err == nil:
	case sensorhub.IsPermanent(err):
		m.errors.WithLabelValues(kindPermanent).Inc()
	default:
		m.errors.WithLabelValues(kindTransient).Inc()
	}
}

// InstrumentSink returns sink wrapped to observe every call, and registers
// the metrics on reg:
//
//	sensorhub_batch_size               histogram of readings per call
//	sensorhub_commit_duration_seconds  histogram of call latency
//	sensorhub_sink_errors_total{kind}  failed calls, permanent or transient
//
// When sink is a sensorhub.BatchWriter, so is the result, and the hub keeps
// committing the readings of concurrent messages together: then one
// observation is one WriteBatches call, that is one transaction. Other
// methods of sink are not passed through. A reg that already holds these
// metrics is an error: instrument one sink per registry.
func InstrumentSink(sink sensorhub.Sink, reg prometheus.Registerer) (sensorhub.Sink, error) {
	if sink == nil || reg == nil {
		return nil, errors.New("metrics: instrument sink: sink and registerer are required")
	}
	m := newSinkMetrics()
	if err := reg.Register(m); err != nil {
		return nil, fmt.Errorf("metrics: instrument sink: %w", err)
	}
	s := &instrumentedSink{sink: sink, m: m}
	if w, ok := sink.(sensorhub.BatchWriter); ok {
		return &instrumentedBatchWriter{instrumentedSink: s, writer: w}, nil
	}
	return s, nil
}

// instrumentedSink observes a Sink.
type instrumentedSink struct {
	sink sensorhub.Sink
	m    *sinkMetrics
}

func (s *instrumentedSink) Write(ctx context.Context, batch sensorhub.Batch) (sensorhub.WriteResult, error) {
	start := time.Now()
	res, err := s.sink.Write(ctx, batch)
	s.m.observe(len(batch.Readings), start, err)
	return res, err
}

// instrumentedBatchWriter observes a BatchWriter.
type instrumentedBatchWriter struct {
	*instrumentedSink
	writer sensorhub.BatchWriter
}

func (s *instrumentedBatchWriter) WriteBatches(ctx context.Context, batches []sensorhub.Batch) ([]sensorhub.WriteResult, error) {
	readings := 0
	for _, b := range batches {
		readings += len(b.Readings)
	}
	start := time.Now()
	res, err := s.writer.WriteBatches(ctx, batches)
	s.m.observe(readings, start, err)
	return res, err
}

// Interface guards.
var (
	_ prometheus.Collector  = (*sinkMetrics)(nil)
	_ sensorhub.Sink        = (*instrumentedSink)(nil)
	_ sensorhub.BatchWriter = (*instrumentedBatchWriter)(nil)
)
