package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
)

const (
	calibrationAddUsage = "calibration add STATION SENSOR [--offset X] [--scale Y] [--from T] [--to T] [--note S]"
	calibrationEndUsage = "calibration end ID --to T"
)

// runCalibration adds, ends and lists calibrations (DESIGN.md §11).
func runCalibration(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: calibration needs add, end or list", errUsage)
	}
	sub, args := args[0], args[1:]
	var run func(*calibration.Store) error
	switch sub {
	case "add":
		c, err := parseCalibrationAdd(args)
		if err != nil {
			return err
		}
		run = func(store *calibration.Store) error {
			added, applied, err := store.Add(ctx, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "added calibration #%d: %s/%s in %s: %s\n", added.ID, added.Station, added.Sensor,
				period(added.From, added.To), formula(added.Scale, added.Offset))
			fmt.Fprintf(stdout, "%d stored reading(s) calibrated again\n", applied.Readings)
			return nil
		}
	case "end":
		id, to, err := parseCalibrationEnd(args)
		if err != nil {
			return err
		}
		run = func(store *calibration.Store) error {
			applied, err := store.End(ctx, id, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "ended calibration #%d at %s\n%d stored reading(s) calibrated again\n", id, to.UTC().Format(time.RFC3339Nano), applied.Readings)
			return nil
		}
	case "list":
		fs := flag.NewFlagSet("calibration list", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "print JSON")
		rest, err := parseArgs(fs, args)
		if err != nil || len(rest) > 2 {
			return fmt.Errorf("%w: calibration list [STATION [SENSOR]] [--json]", errUsage)
		}
		rest = append(rest, "", "")
		run = func(store *calibration.Store) error {
			list, err := store.List(ctx, rest[0], rest[1])
			switch {
			case err != nil:
				return err
			case *asJSON:
				return printJSON(stdout, list)
			}
			return printCalibrations(stdout, list)
		}
	default:
		return fmt.Errorf("%w: unknown calibration command %q", errUsage, sub)
	}

	pool, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Quality control first, so that the derived values follow the new
	// flags as well as the new values.
	derived, err := cfg.derived.processor()
	if err != nil {
		return err
	}
	var followers []calibration.Follower
	if cfg.processing.qualityControl {
		p, err := commandQC(derived)
		if err != nil {
			return err
		}
		followers = append(followers, p)
	}
	if derived != nil {
		followers = append(followers, derived)
	}
	store, err := calibration.New(calibration.Config{DB: pool, Followers: followers})
	if err != nil {
		return err
	}
	err = run(store)
	if errors.Is(err, calibration.ErrInvalid) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

// parseCalibrationAdd reads the arguments of calibration add, naming every
// bad one at once. The scale defaults to 1, the offset to 0.
func parseCalibrationAdd(args []string) (calibration.Calibration, error) {
	fs := flag.NewFlagSet("calibration add", flag.ContinueOnError)
	offset := stringFlag(fs, "offset", "added after scaling (default 0)")
	scale := stringFlag(fs, "scale", "multiplies the value (default 1)")
	from := stringFlag(fs, "from", "start of the period, RFC 3339 (default: the beginning of time)")
	to := stringFlag(fs, "to", "end of the period, exclusive, RFC 3339 (default: open)")
	note := fs.String("note", "", "why, for people")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return calibration.Calibration{}, fmt.Errorf("%w: %s: %v", errUsage, calibrationAddUsage, err)
	}
	if len(rest) != 2 {
		return calibration.Calibration{}, fmt.Errorf("%w: %s: give a station and a sensor", errUsage, calibrationAddUsage)
	}
	var p problems
	c := calibration.Calibration{Station: rest[0], Sensor: rest[1], Scale: 1, Note: *note,
		From: p.time("from", *from), To: p.time("to", *to)}
	if v := p.float("scale", *scale); v != nil {
		c.Scale = *v
	}
	if v := p.float("offset", *offset); v != nil {
		c.Offset = *v
	}
	if err := p.err("calibration add", c.Validate()); err != nil {
		return calibration.Calibration{}, err
	}
	return c, nil
}

// parseCalibrationEnd reads the arguments of calibration end.
func parseCalibrationEnd(args []string) (int64, time.Time, error) {
	fs := flag.NewFlagSet("calibration end", flag.ContinueOnError)
	to := stringFlag(fs, "to", "new end of the period, exclusive, RFC 3339")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %s: %v", errUsage, calibrationEndUsage, err)
	}
	var p problems
	if len(rest) != 1 {
		p.add("give exactly one calibration id")
	}
	var id int64
	if len(rest) == 1 {
		if id, err = strconv.ParseInt(rest[0], 10, 64); err != nil || id <= 0 {
			p.add("%q is not a calibration id (see calibration list)", rest[0])
		}
	}
	if *to == nil {
		p.add("--to is required")
	}
	end := p.time("to", *to)
	if err := p.err(calibrationEndUsage, nil); err != nil {
		return 0, time.Time{}, err
	}
	return id, end, nil
}

func printCalibrations(w io.Writer, list []calibration.Calibration) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATION\tSENSOR\tFROM\tTO\tSCALE\tOFFSET\tNOTE\tCREATED AT")
	for _, c := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%v\t%v\t%s\t%s\n", c.ID, c.Station, c.Sensor, bound(c.From, "-"), bound(c.To, "-"),
			c.Scale, c.Offset, orDash(c.Note), c.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// formula shows what a calibration does to a value.
func formula(scale, offset float64) string {
	if offset < 0 {
		return fmt.Sprintf("value × %v − %v", scale, -offset)
	}
	return fmt.Sprintf("value × %v + %v", scale, offset)
}

// period shows [from, to) with its open ends named.
func period(from, to time.Time) string {
	return "[" + bound(from, "the beginning") + ", " + bound(to, "open") + ")"
}

func bound(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339Nano)
}
