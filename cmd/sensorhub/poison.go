package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"
)

// runPoison lists or replays the poison queue.
func runPoison(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: poison needs list or replay", errUsage)
	}
	transport, err := openTransport(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer transport.Close()
	queue := transport.PoisonQueue()

	switch sub, args := args[0], args[1:]; sub {
	case "list":
		fs := flag.NewFlagSet("poison list", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		count := fs.Int64("count", 100, "show at most this many entries")
		after := fs.String("after", "", "start after this poison entry id")
		if err := fs.Parse(args); err != nil || *count <= 0 || fs.NArg() > 0 {
			return fmt.Errorf("%w: poison list [--count N] [--after ID]", errUsage)
		}
		total, err := queue.Len(ctx)
		if err != nil {
			return err
		}
		entries, err := queue.List(ctx, *after, *count)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPOISONED AT\tREASON\tSOURCE ID\tERROR\tPAYLOAD")
		for _, e := range entries {
			at := ""
			if !e.PoisonedAt.IsZero() {
				at = e.PoisonedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.200q\n", e.ID, at, e.Reason, e.EntryID, e.Error, e.Payload)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d of %d poisoned message(s) shown\n", len(entries), total)
		return nil
	case "replay":
		n, err := queue.Replay(ctx, args)
		fmt.Fprintf(stdout, "replayed %d message(s) to stream %s\n", n, cfg.stream)
		return err
	default:
		return fmt.Errorf("%w: unknown poison command %q", errUsage, sub)
	}
}
