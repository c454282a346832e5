package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

const (
	qcFlagUsage    = "qc flag STATION SENSOR --from T --to T --flag 3|4 [--note S]"
	qcRebuildUsage = "qc rebuild [--station S] [--from T] [--to T]"
	qcSetUsage     = "qc set STATION|all SENSOR [--climatology MIN:MAX] [--spike X] [--rate-of-change X] [--flat-line-count N] [--flat-line-period D] [--flat-line-tolerance X] [--max-gap D]"
	qcResetUsage   = "qc reset STATION|all SENSOR"
	qcListUsage    = "qc list [--json]"
)

// runQC flags periods by hand, re-evaluates stored readings and manages
// the quality-control settings (DESIGN.md §12, docs/quality.md). The
// sensor types are the built-in ones, as the service registers them.
func runQC(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: qc needs flag, rebuild, set, reset or list", errUsage)
	}
	sub, args := args[0], args[1:]
	quantities, err := cfg.derived.processor()
	if err != nil {
		return err
	}
	p, err := commandQC(quantities)
	if err != nil {
		return err
	}
	var run func(db *pgxpool.Pool) error
	switch sub {
	case "flag":
		m, err := parseQCFlag(args)
		if err != nil {
			return err
		}
		run = func(db *pgxpool.Pool) error {
			m, changed, err := p.Flag(ctx, db, m)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "flagged %s/%s in [%s, %s) as %d (manual #%d)\n%d stored reading(s) changed flags\n",
				m.Station, m.Sensor, m.From.UTC().Format(time.RFC3339Nano), m.To.UTC().Format(time.RFC3339Nano), m.Flag, m.ID, changed)
			return nil
		}
	case "rebuild":
		scope, err := parseQCRebuild(args)
		if err != nil {
			return err
		}
		run = func(db *pgxpool.Pool) error {
			line := newProgressLine(stdout) // rollup.go's: a line on a terminal only
			res, err := p.Rebuild(ctx, db, scope, func(done, total int) {
				if line.w != nil {
					line.shown = true
					fmt.Fprintf(line.w, "\r\033[Kseries %d/%d", done, total)
				}
			})
			line.end()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "re-evaluated %d series, %d reading(s) changed flags\n", res.Series, res.Changed)
			return nil
		}
	case "set":
		s, err := parseQCSet(args)
		if err != nil {
			return err
		}
		run = func(db *pgxpool.Pool) error {
			if err := qc.Set(ctx, db, s); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "set %s/%s; run `sensorhub qc rebuild` to re-evaluate stored readings\n", orAll(s.Station), s.Sensor)
			return nil
		}
	case "reset":
		if len(args) != 2 {
			return fmt.Errorf("%w: %s", errUsage, qcResetUsage)
		}
		station := stationArg(args[0])
		run = func(db *pgxpool.Pool) error {
			found, err := qc.Reset(ctx, db, station, args[1])
			switch {
			case err != nil:
				return err
			case !found:
				return fmt.Errorf("no settings for %s/%s (see qc list)", orAll(station), args[1])
			}
			fmt.Fprintf(stdout, "reset %s/%s to the declared limits\n", orAll(station), args[1])
			return nil
		}
	case "list":
		fs := flag.NewFlagSet("qc list", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "print JSON")
		if rest, err := parseArgs(fs, args); err != nil || len(rest) > 0 {
			return fmt.Errorf("%w: %s", errUsage, qcListUsage)
		}
		run = func(db *pgxpool.Pool) error { return listQC(ctx, db, *asJSON, stdout) }
	default:
		return fmt.Errorf("%w: unknown qc command %q", errUsage, sub)
	}

	pool, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	err = run(pool)
	if errors.Is(err, qc.ErrInvalid) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

// stationArg reads STATION|all: "all" is every station.
func stationArg(s string) string {
	if s == "all" {
		return ""
	}
	return s
}

// commandQC is quality control as the commands run it (qc, calibration):
// over the built-in sensor types, which the service registers, with the
// derived quantities (nil when off) following the readings whose flags
// change to or from fail.
func commandQC(quantities *derived.Processor) (*qc.Processor, error) {
	var followers []qc.Follower
	if quantities != nil {
		followers = append(followers, quantities)
	}
	return qc.New(qc.Config{Types: handlers.Builtin(), Followers: followers})
}

func orAll(station string) string {
	if station == "" {
		return "all"
	}
	return station
}

// parseQCFlag reads the arguments of qc flag, naming every bad one.
func parseQCFlag(args []string) (qc.ManualFlag, error) {
	fs := flag.NewFlagSet("qc flag", flag.ContinueOnError)
	from := stringFlag(fs, "from", "start of the period, RFC 3339")
	to := stringFlag(fs, "to", "end of the period, exclusive, RFC 3339")
	code := stringFlag(fs, "flag", "3 (suspect) or 4 (fail)")
	note := fs.String("note", "", "why, for people")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return qc.ManualFlag{}, fmt.Errorf("%w: %s: %v", errUsage, qcFlagUsage, err)
	}
	var p problems
	if len(rest) != 2 {
		p.add("give a station and a sensor")
		rest = append(rest, "", "")
	}
	for name, v := range map[string]*string{"from": *from, "to": *to, "flag": *code} {
		if v == nil {
			p.add("--%s is required", name)
		}
	}
	m := qc.ManualFlag{Station: rest[0], Sensor: rest[1], From: p.time("from", *from), To: p.time("to", *to), Note: *note}
	if *code != nil {
		switch *(*code) {
		case "3":
			m.Flag = sensorhub.FlagSuspect
		case "4":
			m.Flag = sensorhub.FlagFail
		default:
			p.add("--flag %q is neither 3 (suspect) nor 4 (fail)", *(*code))
		}
	}
	p.registered(m.Sensor)
	var invalid error
	if len(p) == 0 {
		invalid = m.Validate()
	}
	if err := p.err(qcFlagUsage, invalid); err != nil {
		return qc.ManualFlag{}, err
	}
	return m, nil
}

// parseQCRebuild reads the arguments of qc rebuild.
func parseQCRebuild(args []string) (qc.Scope, error) {
	fs := flag.NewFlagSet("qc rebuild", flag.ContinueOnError)
	station := fs.String("station", "", "only this station")
	from := stringFlag(fs, "from", "start, RFC 3339")
	to := stringFlag(fs, "to", "end, exclusive, RFC 3339")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return qc.Scope{}, fmt.Errorf("%w: %s: %v", errUsage, qcRebuildUsage, err)
	}
	var p problems
	if len(rest) > 0 {
		p.add("unexpected arguments %q", rest)
	}
	if *station != "" {
		if err := sensorhub.CheckStation(*station); err != nil {
			p.add("--station: %v", err)
		}
	}
	s := qc.Scope{Station: *station, From: p.time("from", *from), To: p.time("to", *to)}
	if !s.From.IsZero() && !s.To.IsZero() && !s.To.After(s.From) {
		p.add("--to %s must be after --from %s", **to, **from)
	}
	if err := p.err(qcRebuildUsage, nil); err != nil {
		return qc.Scope{}, err
	}
	return s, nil
}

// parseQCSet reads the arguments of qc set, naming every bad one.
func parseQCSet(args []string) (qc.Settings, error) {
	fs := flag.NewFlagSet("qc set", flag.ContinueOnError)
	climatology := stringFlag(fs, "climatology", "plausible range of every month, MIN:MAX (0:0 turns the test off)")
	spike := stringFlag(fs, "spike", "spike threshold (0: off)")
	rate := stringFlag(fs, "rate-of-change", "largest change per minute (0: off)")
	count := stringFlag(fs, "flat-line-count", "fewest readings of a flat line (0: off)")
	period := stringFlag(fs, "flat-line-period", "shortest flat line, a duration such as 6h (0: off)")
	tolerance := stringFlag(fs, "flat-line-tolerance", "largest step that is still the same value")
	maxGap := stringFlag(fs, "max-gap", "largest gap between neighbours, a duration such as 15m")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return qc.Settings{}, fmt.Errorf("%w: %s: %v", errUsage, qcSetUsage, err)
	}
	var p problems
	if len(rest) != 2 {
		p.add("give a station (or all) and a sensor")
		rest = append(rest, "all", "")
	}
	s := qc.Settings{Station: stationArg(rest[0]), Sensor: rest[1],
		Spike: p.float("spike", *spike), RateOfChange: p.float("rate-of-change", *rate), FlatLineTolerance: p.float("flat-line-tolerance", *tolerance),
		FlatLinePeriod: p.duration("flat-line-period", *period), MaxGap: p.duration("max-gap", *maxGap)}
	if v := *count; v != nil {
		n, err := strconv.Atoi(*v)
		if err != nil {
			p.add("--flat-line-count %q is not a whole number", *v)
		}
		s.FlatLineCount = &n
	}
	if v := *climatology; v != nil {
		minText, maxText, ok := strings.Cut(*v, ":")
		lo, errMin := strconv.ParseFloat(minText, 64)
		hi, errMax := strconv.ParseFloat(maxText, 64)
		if !ok || errMin != nil || errMax != nil {
			p.add("--climatology %q is not MIN:MAX, e.g. --climatology=-30:45", *v)
		}
		s.Climatology = &sensorhub.Range{Min: lo, Max: hi}
	}
	if *climatology == nil && *spike == nil && *rate == nil && *count == nil && *period == nil && *tolerance == nil && *maxGap == nil {
		p.add("give at least one limit to set")
	}
	p.registered(s.Sensor)
	if err := p.err(qcSetUsage, s.Validate()); err != nil {
		return qc.Settings{}, err
	}
	return s, nil
}

// registered adds a problem when sensor is not empty and not one of the
// service's sensor types: its readings would never be stored.
func (p *problems) registered(sensor string) {
	if sensor == "" {
		return
	}
	for _, t := range handlers.Builtin() {
		if t.Name == sensor {
			return
		}
	}
	p.add("sensor type %q is not registered", sensor)
}

// duration parses the value of flag name as a Go duration, if given.
func (p *problems) duration(name string, v *string) *time.Duration {
	if v == nil {
		return nil
	}
	d, err := time.ParseDuration(*v)
	if err != nil {
		p.add("--%s %q is not a duration such as 90s, 15m or 6h", name, *v)
		return nil
	}
	return &d
}

// listQC prints the declared limits of the built-in types, the stored
// settings and the manual flags.
func listQC(ctx context.Context, db *pgxpool.Pool, asJSON bool, w io.Writer) error {
	settings, err := qc.ListSettings(ctx, db)
	if err != nil {
		return err
	}
	flags, err := qc.ListFlags(ctx, db, "")
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, struct {
			Settings []qc.Settings   `json:"settings"`
			Flags    []qc.ManualFlag `json:"manual_flags"`
		}{settings, flags})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATION\tSENSOR\tCLIMATOLOGY\tSPIKE\tRATE/MIN\tFLAT COUNT\tFLAT PERIOD\tFLAT TOL\tMAX GAP")
	for _, t := range handlers.Builtin() {
		if q := t.QC; q != (sensorhub.QC{}) {
			fmt.Fprintf(tw, "(declared)\t%s\t%s\t%v\t%v\t%d\t%s\t%v\t%s\n", t.Name, climatologyText(q.Climatology), q.Spike, q.RateOfChange,
				q.FlatLine.Count, q.FlatLine.Period, q.FlatLine.Tolerance, q.Gap())
		}
	}
	for _, s := range settings {
		clim := "-"
		if c := s.Climatology; c != nil {
			clim = fmt.Sprintf("%v:%v", c.Min, c.Max)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orAll(s.Station), s.Sensor, clim, number(s.Spike), number(s.RateOfChange),
			optional(s.FlatLineCount), optional(s.FlatLinePeriod), number(s.FlatLineTolerance), optional(s.MaxGap))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d manual flag(s)\n", len(flags))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATION\tSENSOR\tFROM\tTO\tFLAG\tNOTE")
	for _, m := range flags {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", m.ID, m.Station, m.Sensor, m.From.UTC().Format(time.RFC3339), m.To.UTC().Format(time.RFC3339), m.Flag, orDash(m.Note))
	}
	return tw.Flush()
}

// climatologyText shows monthly ranges, once when every month has the
// same.
func climatologyText(months [12]sensorhub.Range) string {
	if months == (sensorhub.AllYear(months[0].Min, months[0].Max)) {
		if months[0] == (sensorhub.Range{}) {
			return "-"
		}
		return fmt.Sprintf("%v:%v", months[0].Min, months[0].Max)
	}
	return "monthly (docs/quality.md)"
}

func optional[T any](v *T) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}
