package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres/alarms"
)

const ruleUsage = "rule add SPEC | rule list | rule remove ID (SPEC: sensor[@station]>threshold[/clear] or <)"

// runRule adds, lists or removes threshold rules in the database. A
// running service picks a change up within alarms.DefaultRefresh.
func runRule(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, ruleUsage)
	}
	sub, args := args[0], args[1:]
	if (sub == "list" && len(args) != 0) || (sub != "list" && len(args) != 1) {
		return fmt.Errorf("%w: %s", errUsage, ruleUsage)
	}
	conn, err := pgx.Connect(ctx, cfg.databaseURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	switch sub {
	case "add":
		rules, err := threshold.Parse(args[0])
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		if len(rules) != 1 {
			return fmt.Errorf("%w: rule add takes one rule, got %d", errUsage, len(rules))
		}
		if err := unregisteredSensors("rule add", rules, handlers.Builtin()); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		r, err := alarms.AddRule(ctx, conn, rules[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added rule %s\n", r)
	case "list":
		rules, err := alarms.ListRules(ctx, conn)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRULE\tSTATION")
		for _, r := range rules {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", r.ID, r.Rule, cmp.Or(r.Station, "(all)"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d rule(s)\n", len(rules))
	case "remove":
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return fmt.Errorf("%w: rule remove ID: %q is not a rule ID (see rule list)", errUsage, args[0])
		}
		if err := alarms.RemoveRule(ctx, conn, id); err != nil {
			if errors.Is(err, alarms.ErrNoRule) {
				return fmt.Errorf("%w (see rule list)", err)
			}
			return err
		}
		fmt.Fprintf(stdout, "removed rule %d\n", id)
	default:
		return fmt.Errorf("%w: unknown rule command %q; %s", errUsage, sub, ruleUsage)
	}
	return nil
}
