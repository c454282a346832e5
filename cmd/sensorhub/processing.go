package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubfx"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/alarms"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

// processingConfig is the stateful-processing part of the configuration
// (docs/processing.md).
type processingConfig struct {
	reorderWindow time.Duration
	// thresholds seed the table threshold_rules at start-up.
	thresholds []threshold.Rule
	// qualityControl runs the qc processor (SENSORHUB_QC, default true).
	qualityControl bool
}

func loadProcessingConfig(e *env) processingConfig {
	c := processingConfig{reorderWindow: e.duration("SENSORHUB_REORDER_WINDOW", postgres.DefaultReorderWindow),
		qualityControl: e.boolean("SENSORHUB_QC", true)}
	rules, err := threshold.Parse(e.str("SENSORHUB_THRESHOLDS", ""))
	if err != nil {
		e.fail("SENSORHUB_THRESHOLDS", "%v", err)
	}
	c.thresholds = rules
	return c
}

// processingModule runs the built-in processors in the sink's commit
// transactions (the threshold rules, seeded from SENSORHUB_THRESHOLDS at
// start-up) and the flusher that releases the readings of series that
// stopped sending.
var processingModule = fx.Options(
	fx.Provide(fx.Annotate(newProcessors, fx.ParamTags(``, ``, ``, ``, `group:"`+sensorhubfx.Group+`"`))),
	fx.Invoke(runFlusher),
)

// newProcessors returns the processors of the sink: quality control first
// (unless SENSORHUB_QC=false), so that the others never see a reading it
// fails, then the threshold rules, which always run so that rules added
// with `sensorhub rule add` apply without a restart, then the derived
// quantities unless SENSORHUB_DERIVED=false. A seed rule for a sensor type
// that is not registered fails start-up.
func newProcessors(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, logger *slog.Logger, types []sensorhub.SensorType) ([]postgres.Processor, error) {
	if err := unregisteredSensors("SENSORHUB_THRESHOLDS", cfg.processing.thresholds, types); err != nil {
		return nil, err
	}
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		added, err := alarms.SeedRules(ctx, pool, cfg.processing.thresholds)
		for _, r := range added {
			logger.Info("threshold rule seeded from SENSORHUB_THRESHOLDS", "rule", r.Rule.String(), "id", r.ID)
		}
		return err
	}))
	var processors []postgres.Processor
	if cfg.processing.qualityControl {
		p, err := qc.New(qc.Config{Types: types})
		if err != nil {
			return nil, err
		}
		processors = append(processors, p)
	}
	processors = append(processors, alarms.New(alarms.Config{}))
	// Derived quantities come last, after any processor that changes
	// readings (quality control), so that they follow its revisions.
	d, err := cfg.derived.processor()
	if err != nil {
		return nil, err
	}
	if d != nil {
		processors = append(processors, d)
	}
	return processors, nil
}

// unregisteredSensors names every rule whose sensor type is none of types
// (unless a catch-all type is registered): such a rule would never fire.
func unregisteredSensors(source string, rules []threshold.Rule, types []sensorhub.SensorType) error {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name
	}
	if slices.Contains(names, sensorhub.CatchAll) {
		return nil
	}
	var errs []error
	for _, r := range rules {
		if !slices.Contains(names, r.Sensor) {
			errs = append(errs, fmt.Errorf("%s: rule %s: sensor type %q is not registered", source, r, r.Sensor))
		}
	}
	return errors.Join(errs...)
}

// runFlusher runs the sink's flusher while the application runs.
func runFlusher(lc fx.Lifecycle, sink *postgres.Sink) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				sink.RunFlusher(ctx)
			}()
			return nil
		},
		OnStop: func(context.Context) error {
			cancel()
			<-done
			return nil
		},
	})
}
