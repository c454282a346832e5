package migrations

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Up applies every pending migration to the schema that pool's connections
// use (the first of their search_path), waiting while another process
// migrates it, and returns the migrations it applied. It is the one call a
// program that embeds sensorhub needs before it starts:
//
//	pool, err := pgxpool.New(ctx, databaseURL)
//	...
//	if _, err := migrations.Up(ctx, pool); err != nil {
//		return err
//	}
//
// logger receives an Info record per migration applied; nil means
// slog.Default(). The pool stays open. Up is Migrator.Up over pool; use a
// Migrator for Down and Status.
func Up(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) ([]Result, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer func() { _ = db.Close() }() // closes db's connections, never the pool
	m, err := New(Config{DB: db, Logger: logger})
	if err != nil {
		return nil, err
	}
	return m.Up(ctx)
}
