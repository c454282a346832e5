package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/migrations"
)

// environment holds the connections of a run and what it created, so that
// close can drop it again.
type environment struct {
	opts    options
	admin   *pgxpool.Pool
	redis   *goredis.Client
	schemas []string
	streams []string
}

func newEnvironment(ctx context.Context, o options) (*environment, error) {
	admin, err := pgxpool.New(ctx, o.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("postgres unreachable: %w", err)
	}
	ropts, err := goredis.ParseURL(o.redisURL)
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	client := goredis.NewClient(ropts)
	if err := client.Ping(ctx).Err(); err != nil {
		admin.Close()
		return nil, fmt.Errorf("redis unreachable: %w", err)
	}
	return &environment{opts: o, admin: admin, redis: client}, nil
}

func (e *environment) close() {
	e.clear()
	e.admin.Close()
	_ = e.redis.Close()
}

// clear drops the schemas and deletes the streams (with their poison and
// events streams) made so far. Run after each phase, it starts the next
// one on a database and a Redis that hold only its own data: kept until
// the end, the 19 drains before the growth phase left about 6 million
// rows in their schemas and as many stream entries, besides their events,
// in Redis.
func (e *environment) clear() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range e.schemas {
		_, _ = e.admin.Exec(ctx, "DROP SCHEMA "+s+" CASCADE")
	}
	for _, s := range e.streams {
		_ = e.redis.Unlink(ctx, s, s+".poison", s+eventsSuffix).Err()
	}
	e.schemas, e.streams = nil, nil
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// newSchema creates a schema with the migrations applied and returns its
// name and a database URL whose sessions use it.
func (e *environment) newSchema(ctx context.Context) (string, string, error) {
	name := randomName("bench")
	if _, err := e.admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", "", err
	}
	e.schemas = append(e.schemas, name)
	u, err := url.Parse(e.opts.databaseURL)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	m, err := migrations.New(migrations.Config{DB: db, Logger: discardLogger})
	if err != nil {
		return "", "", err
	}
	if _, err := m.Up(ctx); err != nil {
		return "", "", err
	}
	return name, u.String(), nil
}

// eventsSuffix names a run's events stream after its input stream: the
// binary runs with events on, as in production, forwarding them there.
const eventsSuffix = ".events"

// newStream returns a fresh stream name, deleted by clear (with its poison
// and events streams).
func (e *environment) newStream() string {
	s := randomName("bench")
	e.streams = append(e.streams, s)
	return s
}

// preload appends the readings to stream in pipelined chunks.
func (e *environment) preload(ctx context.Context, stream string, readings []reading) error {
	const chunk = 10_000
	for i := 0; i < len(readings); i += chunk {
		pipe := e.redis.Pipeline()
		for _, r := range readings[i:min(i+chunk, len(readings))] {
			pipe.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", r.payload}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
	}
	return nil
}

// rows counts the rows of schema's readings table.
func (e *environment) rows(ctx context.Context, schema string) (int, error) {
	var n int
	// Derived readings (dew point, …) are computed, not sent: not counted.
	err := e.admin.QueryRow(ctx, "SELECT count(*) FROM "+schema+".readings WHERE NOT derived").Scan(&n)
	return n, err
}

// waitAcked polls the consumer group of stream until it has read entries
// entries and acked them all; it fails after timeout. Both the minimal
// loop and sensorhub ack an entry only once its row is committed, so this
// times a drain, or the catch-up after a live feed, without counting the
// table while it fills: a count(*) every few milliseconds costs in
// proportion to the rows stored so far, which made a long drain look
// slower than a short one (docs/growth.md), and while the service caught
// up after the live feed the counts of 300,000 rows every 100 ms took 31 s
// of PostgreSQL's time.
func (e *environment) waitAcked(ctx context.Context, stream, group string, entries int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		groups, err := e.redis.XInfoGroups(ctx, stream).Result()
		if ctx.Err() != nil {
			return fmt.Errorf("group %s: stopped: %w", group, context.Cause(ctx))
		}
		if err != nil {
			return fmt.Errorf("group %s: %w", group, err)
		}
		var g goredis.XInfoGroup
		for _, x := range groups {
			if x.Name == group {
				g = x
			}
		}
		if g.EntriesRead >= int64(entries) && g.Pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s read %d of %d entries, %d pending, after %s", group, g.EntriesRead, entries, g.Pending, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDrained is waitAcked, then checks that schema holds rows rows.
func (e *environment) waitDrained(ctx context.Context, stream, group, schema string, entries, rows int, timeout time.Duration) error {
	if err := e.waitAcked(ctx, stream, group, entries, timeout); err != nil {
		return err
	}
	n, err := e.rows(ctx, schema)
	if err != nil {
		return err
	}
	if n != rows {
		return fmt.Errorf("every entry acked, but %d of %d rows stored", n, rows)
	}
	return nil
}
