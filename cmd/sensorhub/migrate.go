package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/sensorhub/sensorhub/migrations"
)

// runMigrate applies, rolls back or lists the schema migrations.
func runMigrate(ctx context.Context, cfg config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: migrate up|down|status", errUsage)
	}
	db, err := sql.Open("pgx", cfg.databaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	m, err := migrations.New(migrations.Config{DB: db, Logger: logger})
	if err != nil {
		return err
	}

	switch args[0] {
	case "up":
		applied, err := m.Up(ctx)
		for _, r := range applied {
			fmt.Fprintf(stdout, "applied %s (%s)\n", r.Name, r.Duration.Round(time.Millisecond))
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema up to date: %d migration(s) applied now\n", len(applied))
	case "down":
		r, err := m.Down(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rolled back %s (%s)\n", r.Name, r.Duration.Round(time.Millisecond))
	case "status":
		states, err := m.Status(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED AT")
		pending := 0
		for _, s := range states {
			at := "pending"
			if s.Applied {
				at = s.AppliedAt.UTC().Format(time.RFC3339)
			} else {
				pending++
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Version, s.Name, at)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d migration(s), %d pending\n", len(states), pending)
	default:
		return fmt.Errorf("%w: unknown migrate command %q", errUsage, args[0])
	}
	return nil
}
