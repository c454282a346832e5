package main

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
)

// stalenessConfig is the staleness part of the configuration
// (docs/staleness.md).
type stalenessConfig struct {
	enabled       bool
	policy        staleness.Policy
	sweepInterval time.Duration
}

func loadStalenessConfig(e *env) stalenessConfig {
	return stalenessConfig{
		enabled: e.boolean("SENSORHUB_STALENESS", false),
		policy: staleness.Policy{
			After:           e.multiple("SENSORHUB_STALE_AFTER", staleness.DefaultAfter),
			DefaultInterval: e.duration("SENSORHUB_STALE_DEFAULT_INTERVAL", staleness.DefaultDefaultInterval),
			MinInterval:     e.duration("SENSORHUB_STALE_MIN_INTERVAL", staleness.DefaultMinInterval),
		},
		sweepInterval: e.duration("SENSORHUB_STALE_SWEEP_INTERVAL", staleness.DefaultSweepInterval),
	}
}

// multiple reads a factor of 1 or more, such as 3 or 2.5.
func (e *env) multiple(name string, def float64) float64 {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 || math.IsInf(f, 0) {
		e.fail(name, "%q is not a number of 1 or more, such as 3 or 2.5", v)
		return def
	}
	return f
}

// stalenessModule tracks arrivals in the sink (see newSink), runs the
// sweeper that announces stale sensors, and exports both to /metrics.
// With SENSORHUB_STALENESS=false it provides the tracker, which newSink
// then leaves out, and nothing else runs.
var stalenessModule = fx.Options(
	fx.Provide(newTracker),
	fx.Invoke(startSweeper),
)

func newTracker(cfg config) *staleness.Tracker {
	return staleness.NewTracker(cfg.staleness.policy)
}

// startSweeper runs the sweeper with the application, unless staleness is
// off, and exports its and the tracker's counters.
func startSweeper(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, tracker *staleness.Tracker, reg *prometheus.Registry, logger *slog.Logger) error {
	if !cfg.staleness.enabled {
		logger.Info("staleness off: no sensor.stale or sensor.recovered events", "env", "SENSORHUB_STALENESS")
		return nil
	}
	sweeper, err := staleness.NewSweeper(staleness.Config{DB: pool, Policy: cfg.staleness.policy, SweepInterval: cfg.staleness.sweepInterval, Logger: logger})
	if err != nil {
		return err
	}
	collector, err := metrics.NewStalenessCollector(func() metrics.StalenessStats {
		s := sweeper.Stats()
		series := make([]metrics.SeriesState, len(s.Series))
		for i, st := range s.Series {
			series[i] = metrics.SeriesState{Station: st.Station, Sensor: st.Sensor, Stale: st.Stale}
		}
		return metrics.StalenessStats{Sweeps: s.Sweeps, Failed: s.Failed, Stale: s.Stale, Recovered: tracker.Recovered(),
			Series: series, MeasuredAt: s.MeasuredAt}
	})
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return fmt.Errorf("register staleness metrics: %w", err)
	}
	lc.Append(fx.StartStopHook(sweeper.Start, sweeper.Stop))
	return nil
}
