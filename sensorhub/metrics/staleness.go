package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StalenessStats is what a StalenessCollector reports about staleness
// (DESIGN.md §16). It mirrors the staleness package's Sweeper and Tracker
// so that this package does not depend on the Postgres sink; the caller
// copies the fields over.
type StalenessStats struct {
	// Sweeps counts completed sweeps of this process's sweeper.
	Sweeps uint64
	// Failed counts its failed sweeps, each tried again later.
	Failed uint64
	// Stale counts the sensor.stale events this process committed.
	Stale uint64
	// Recovered counts the sensor.recovered events this process's sink
	// wrote.
	Recovered uint64
	// Series is every series (station, sensor) with its state, at
	// MeasuredAt.
	Series []SeriesState
	// MeasuredAt is when Series was read; zero before the first reading,
	// when no series is reported.
	MeasuredAt time.Time
}

// SeriesState is whether one series is stale.
type SeriesState struct {
	Station, Sensor string
	Stale           bool
}

// The staleness metrics. Names are a contract with dashboards: do not
// rename.
var (
	staleSweepsDesc = prometheus.NewDesc("sensorhub_staleness_sweeps_total",
		"Completed sweeps for stale sensors by this process.", nil, nil)
	staleFailedDesc = prometheus.NewDesc("sensorhub_staleness_sweep_failures_total",
		"Failed sweeps for stale sensors by this process; each is tried again a sweep interval later.", nil, nil)
	staleEventsDesc = prometheus.NewDesc("sensorhub_staleness_events_total",
		"sensor.stale and sensor.recovered events this process wrote, by type; every replica counts its own.", []string{"type"}, nil)
	sensorStaleDesc = prometheus.NewDesc("sensorhub_sensor_stale",
		"1 while the sensor of the station is announced stale, else 0; one series per (station, sensor) that ever reported or has an interval set.",
		[]string{"station", "sensor"}, nil)
	staleMeasuredDesc = prometheus.NewDesc("sensorhub_staleness_last_measured_timestamp_seconds",
		"When sensorhub_sensor_stale was last read from the database, in seconds since the Unix epoch.", nil, nil)
)

// StalenessCollector is a prometheus.Collector that reads staleness
// statistics on every scrape. It is safe for concurrent use if the stats
// function is.
type StalenessCollector struct {
	stats func() StalenessStats
}

// NewStalenessCollector returns a collector that calls stats on every
// scrape.
func NewStalenessCollector(stats func() StalenessStats) (*StalenessCollector, error) {
	if stats == nil {
		return nil, errors.New("metrics: staleness collector: stats function is required")
	}
	return &StalenessCollector{stats: stats}, nil
}

// Describe implements prometheus.Collector.
func (c *StalenessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{staleSweepsDesc, staleFailedDesc, staleEventsDesc, sensorStaleDesc, staleMeasuredDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StalenessCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(staleSweepsDesc, prometheus.CounterValue, float64(s.Sweeps))
	ch <- prometheus.MustNewConstMetric(staleFailedDesc, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(staleEventsDesc, prometheus.CounterValue, float64(s.Stale), "sensor.stale")
	ch <- prometheus.MustNewConstMetric(staleEventsDesc, prometheus.CounterValue, float64(s.Recovered), "sensor.recovered")
	if s.MeasuredAt.IsZero() {
		return
	}
	for _, series := range s.Series {
		v := 0.0
		if series.Stale {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(sensorStaleDesc, prometheus.GaugeValue, v, series.Station, series.Sensor)
	}
	ch <- prometheus.MustNewConstMetric(staleMeasuredDesc, prometheus.GaugeValue, float64(s.MeasuredAt.UnixNano())/1e9)
}

// Interface guards.
var _ prometheus.Collector = (*StalenessCollector)(nil)
