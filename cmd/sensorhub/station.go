package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/staleness"
	"github.com/sensorhub/sensorhub/sinks/postgres/stations"
)

const stationSetUsage = "station set ID [--name N] [--timezone TZ] [--lat X] [--lon Y] [--elevation M] [--interval SENSOR=DURATION ...]"

// runStation lists or sets stations (DESIGN.md §10).
func runStation(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: station needs list or set", errUsage)
	}
	switch sub, args := args[0], args[1:]; sub {
	case "list":
		fs := flag.NewFlagSet("station list", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "print JSON")
		if rest, err := parseArgs(fs, args); err != nil || len(rest) > 0 {
			return fmt.Errorf("%w: station list [--json]", errUsage)
		}
		pool, err := openDB(ctx, cfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		list, err := stations.List(ctx, pool)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, list)
		}
		return printStations(stdout, list, cfg.decoder.Location)
	case "set":
		u, intervals, err := parseStationSet(args)
		if err != nil {
			return err
		}
		pool, err := openDB(ctx, cfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		st, err := stations.Set(ctx, pool, u)
		if err != nil {
			return err
		}
		for _, i := range intervals {
			if err := i.Apply(ctx, pool, st.ID); err != nil {
				return err
			}
		}
		if u.ElevationM != nil {
			if err := cfg.derived.followElevation(ctx, pool, st.ID); err != nil {
				return err
			}
		}
		return printStations(stdout, []stations.Station{st}, cfg.decoder.Location)
	default:
		return fmt.Errorf("%w: unknown station command %q", errUsage, sub)
	}
}

// parseStationSet reads the arguments of station set, naming every bad
// one at once: the station's fields, and the expected intervals of its
// sensors (--interval SENSOR=DURATION, repeatable; SENSOR= clears one).
func parseStationSet(args []string) (stations.Update, []staleness.Interval, error) {
	fs := flag.NewFlagSet("station set", flag.ContinueOnError)
	name := stringFlag(fs, "name", "name for people")
	tz := stringFlag(fs, "timezone", "IANA time zone; empty: follow SENSORHUB_TIMEZONE")
	lat := stringFlag(fs, "lat", "latitude, degrees")
	lon := stringFlag(fs, "lon", "longitude, degrees")
	elevation := stringFlag(fs, "elevation", "elevation, metres above sea level")
	var p problems
	var intervals []staleness.Interval
	fs.Func("interval", "expected interval of a sensor, SENSOR=DURATION (repeatable; SENSOR= clears it)", func(v string) error {
		i, err := staleness.ParseInterval(v)
		if err != nil {
			p.add("--interval: %v", err)
			return nil // reported with the others
		}
		intervals = append(intervals, i)
		return nil
	})
	rest, err := parseArgs(fs, args)
	if err != nil {
		return stations.Update{}, nil, fmt.Errorf("%w: %s: %v", errUsage, stationSetUsage, err)
	}
	if len(rest) != 1 {
		return stations.Update{}, nil, fmt.Errorf("%w: %s: give exactly one station id", errUsage, stationSetUsage)
	}
	u := stations.Update{ID: rest[0], Name: *name, Timezone: *tz,
		Latitude: p.float("lat", *lat), Longitude: p.float("lon", *lon), ElevationM: p.float("elevation", *elevation)}
	if err := p.err("station set", u.Validate()); err != nil {
		return stations.Update{}, nil, err
	}
	return u, intervals, nil
}

// printStations writes stations as a table; a station without a zone
// shows the default zone it follows.
func printStations(w io.Writer, list []stations.Station, defaultZone fmt.Stringer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tLATITUDE\tLONGITUDE\tELEVATION M\tTIMEZONE\tCREATED AT")
	for _, s := range list {
		tz := s.Timezone
		if tz == "" {
			tz = "default (" + defaultZone.String() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, orDash(s.Name), number(s.Latitude), number(s.Longitude),
			number(s.ElevationM), tz, s.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func number(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
