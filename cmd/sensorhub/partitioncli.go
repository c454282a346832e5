package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
)

const partitionUsage = "partition list | partition maintain | partition create FROM TO (times RFC 3339 or YYYY-MM)"

// runPartition lists the partitions of readings, runs one round of their
// maintenance now, or creates those of a time range (say, before a bulk
// load). It acts as the role of DATABASE_URL, which must own readings: in
// the least-privilege layout, the migrator (docs/growth.md).
func runPartition(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, partitionUsage)
	}
	sub, args := args[0], args[1:]
	var from, to time.Time
	switch {
	case (sub == "list" || sub == "maintain") && len(args) == 0:
	case sub == "create" && len(args) == 2:
		var errs []error
		from, errs = parseMonthOrTime(args[0], "FROM", errs)
		to, errs = parseMonthOrTime(args[1], "TO", errs)
		if len(errs) == 0 && !from.Before(to) {
			errs = append(errs, fmt.Errorf("FROM %s is not before TO %s", args[0], args[1]))
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: partition create: %v", errUsage, errs)
		}
	default:
		return fmt.Errorf("%w: %s", errUsage, partitionUsage)
	}
	conn, err := pgx.Connect(ctx, cfg.databaseURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	switch sub {
	case "list":
		parts, err := partition.List(ctx, conn)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tFROM\tTO")
		for _, p := range parts {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, rangeEnd(p.From, p.Default, "MINVALUE"), rangeEnd(p.To, p.Default, "MAXVALUE"))
		}
		return tw.Flush()
	case "create":
		created, err := partition.Ensure(ctx, conn, from, to)
		for _, name := range created {
			fmt.Fprintf(stdout, "created %s\n", name)
		}
		return err
	default: // maintain
		m, err := partition.NewMaintainer(partition.Config{DB: conn, Retention: cfg.rawRetention})
		if err != nil {
			return err
		}
		rep, err := m.Run(ctx, time.Now())
		for _, name := range rep.Created {
			fmt.Fprintf(stdout, "created %s\n", name)
		}
		for _, name := range rep.Dropped {
			fmt.Fprintf(stdout, "dropped %s\n", name)
		}
		if rep.Expired > 0 {
			fmt.Fprintf(stdout, "deleted %d rows older than the retention horizon from %s\n", rep.Expired, partition.DefaultPartition)
		}
		return err
	}
}

// parseMonthOrTime reads an RFC 3339 time or a UTC month (2024-12),
// appending an error naming what to errs.
func parseMonthOrTime(v, what string, errs []error) (time.Time, []error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, errs
	}
	if t, err := time.Parse("2006-01", v); err == nil {
		return t, errs
	}
	return time.Time{}, append(errs, fmt.Errorf("%s %q is neither RFC 3339 nor YYYY-MM", what, v))
}

// rangeEnd prints one end of a partition's range.
func rangeEnd(t time.Time, isDefault bool, open string) string {
	switch {
	case isDefault:
		return "DEFAULT"
	case t.IsZero():
		return open
	}
	return t.Format(time.RFC3339)
}
