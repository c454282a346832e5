package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/health"
	"github.com/sensorhub/sensorhub/sensorhub/metrics"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubfx"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup"
)

// rollupConfig is the rollup part of the configuration (docs/rollups.md).
type rollupConfig struct {
	enabled bool
	maxLag  time.Duration
	// retention is how long raw readings are kept; 0 keeps them forever.
	retention time.Duration
}

// defaultRollupMaxLag is SENSORHUB_ROLLUP_MAX_LAG's default (DESIGN.md §14).
const defaultRollupMaxLag = 5 * time.Minute

func loadRollupConfig(e *env) rollupConfig {
	return rollupConfig{
		enabled:   e.boolean("SENSORHUB_ROLLUPS", true),
		maxLag:    e.duration("SENSORHUB_ROLLUP_MAX_LAG", defaultRollupMaxLag),
		retention: e.retention("SENSORHUB_RAW_RETENTION"),
	}
}

// retention reads a retention period: whole days such as 400d, or a Go
// duration such as 9600h; empty or 0 means forever (0 returned).
func (e *env) retention(name string) time.Duration {
	v := e.getenv(name)
	if v == "" || v == "0" {
		return 0
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*366 {
			e.fail(name, "%q is not a number of days such as 400d", v)
			return 0
		}
		return time.Duration(n) * 24 * time.Hour
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(name, "%q is neither a number of days such as 400d nor a duration such as 9600h (0 keeps readings forever)", v)
		return 0
	}
	return d
}

// zoneName is the IANA name of the default zone, whose days the daily
// rollups of stations without a zone follow.
func (c config) zoneName() string {
	if c.decoder.Location == nil {
		return rollup.DefaultZone
	}
	return c.decoder.Location.String()
}

// rollupModule runs the rollup worker, unless SENSORHUB_ROLLUPS=false,
// with its metrics and its health check: down while the rollup lag
// exceeds SENSORHUB_ROLLUP_MAX_LAG.
var rollupModule = fx.Options(
	fx.Provide(fx.Annotate(newRollupWorker, fx.ParamTags(``, ``, ``, ``, `group:"`+sensorhubfx.Group+`"`))),
	fx.Provide(fx.Annotate(rollupChecks, fx.ResultTags(`group:"`+healthChecksGroup+`,flatten"`))),
	fx.Invoke(registerRollupMetrics),
)

// newRollupWorker returns the worker, started with the application; nil
// with rollups off.
func newRollupWorker(lc fx.Lifecycle, cfg config, pool *pgxpool.Pool, logger *slog.Logger, types []sensorhub.SensorType) (*rollup.Worker, error) {
	if !cfg.rollups.enabled {
		logger.Info("rollups off: readings_5m, readings_1h and readings_1d are not maintained; invalidations accumulate", "env", "SENSORHUB_ROLLUPS")
		return nil, nil
	}
	w, err := rollup.NewWorker(rollup.Config{DB: pool, Types: types, Zone: cfg.zoneName(), Retention: cfg.rollups.retention, Logger: logger})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StartStopHook(w.Start, w.Stop))
	return w, nil
}

// rollupChecks is the health check of the rollup lag, none with rollups
// off.
func rollupChecks(cfg config, w *rollup.Worker) []health.Check {
	if w == nil {
		return nil
	}
	return []health.Check{{Name: "rollups", Func: func(context.Context) error { return w.Check(cfg.rollups.maxLag) }}}
}

// registerRollupMetrics exports the worker's counters and the lag.
func registerRollupMetrics(reg *prometheus.Registry, w *rollup.Worker) error {
	if w == nil {
		return nil
	}
	collector, err := metrics.NewRollupCollector(func() metrics.RollupStats {
		s := w.Stats()
		return metrics.RollupStats{Passes: s.Passes, Failed: s.Failed, Recomputed: s.Recomputed, Dropped: s.Dropped, Lag: s.Lag, MeasuredAt: s.MeasuredAt}
	})
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return fmt.Errorf("register rollup metrics: %w", err)
	}
	return nil
}

const rollupRebuildUsage = "rollup rebuild [--station S] [--from T] [--to T]"

// runRollup recomputes rollups from readings (DESIGN.md §14).
func runRollup(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return fmt.Errorf("%w: %s", errUsage, rollupRebuildUsage)
	}
	r, err := parseRollupRebuild(args[1:])
	if err != nil {
		return err
	}
	pool, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	progress := newProgressLine(stdout)
	n, err := rollup.Rebuild(ctx, rollup.Config{DB: pool, Types: handlers.Builtin(), Zone: cfg.zoneName(), Retention: cfg.rollups.retention},
		r, progress.show)
	progress.end()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuilt %d 5-minute bucket(s) with their hours and days\n", n)
	return nil
}

// parseRollupRebuild reads the arguments of rollup rebuild.
func parseRollupRebuild(args []string) (rollup.Range, error) {
	fs := flag.NewFlagSet("rollup rebuild", flag.ContinueOnError)
	station := fs.String("station", "", "only this station (default: every station)")
	from := stringFlag(fs, "from", "start of the device-time range, RFC 3339 (default: the first reading)")
	to := stringFlag(fs, "to", "end of the range, exclusive, RFC 3339 (default: after the last reading)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return rollup.Range{}, fmt.Errorf("%w: %s: %v", errUsage, rollupRebuildUsage, err)
	}
	var p problems
	if len(rest) > 0 {
		p.add("unexpected argument %q", rest[0])
	}
	r := rollup.Range{Station: *station, From: p.time("from", *from), To: p.time("to", *to)}
	if *station != "" {
		if err := sensorhub.CheckStation(*station); err != nil {
			p.add("--station: %v", err)
		}
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.To.After(r.From) {
		p.add("--to %s must be after --from %s", r.To.Format(time.RFC3339), r.From.Format(time.RFC3339))
	}
	if err := p.err("rollup rebuild", nil); err != nil {
		return rollup.Range{}, err
	}
	return r, nil
}

// progressLine rewrites one line on a terminal; elsewhere (a pipe, a log
// file) it prints nothing, so that output stays clean.
type progressLine struct {
	w     io.Writer
	shown bool
}

func newProgressLine(w io.Writer) *progressLine {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return &progressLine{w: w}
		}
	}
	return &progressLine{}
}

func (p *progressLine) show(pr rollup.Progress) {
	if p.w == nil {
		return
	}
	p.shown = true
	fmt.Fprintf(p.w, "\r\033[Kstation %d/%d %s: %3.0f%%, %d buckets", pr.StationN, pr.Stations, pr.Station, 100*pr.Done, pr.Buckets)
}

func (p *progressLine) end() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
