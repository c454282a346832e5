// Package redistest connects tests to a real Redis and gives each test its
// own key names, so that tests run in parallel against one server.
//
// The server is SENSORHUB_TEST_REDIS_URL (default redis://127.0.0.1:6379/0).
// A test fails when it is unreachable; under go test -short it is skipped.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultURL is the server used when SENSORHUB_TEST_REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the test server's URL.
func URL() string {
	if u := os.Getenv("SENSORHUB_TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Options returns the test server's connection options.
func Options(t testing.TB) *goredis.Options {
	t.Helper()
	if testing.Short() {
		t.Skip("redistest: needs Redis; skipped under -short")
	}
	opts, err := goredis.ParseURL(URL())
	if err != nil {
		t.Fatalf("redistest: parse %s: %v", URL(), err)
	}
	return opts
}

// Client returns a client of the test server, closed when the test ends. It
// fails the test when the server does not answer PING.
func Client(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(Options(t))
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: Redis at %s is unreachable (start it, or run go test -short): %v", URL(), err)
	}
	return c
}

// Name returns a key name unique to this test run, starting with prefix,
// and deletes the key and its poison stream (name + ".poison") when the
// test ends.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + strings.ToLower(hex.EncodeToString(b[:]))
	opts := Options(t)
	t.Cleanup(func() {
		c := goredis.NewClient(opts)
		defer func() { _ = c.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = c.Del(ctx, name, name+".poison").Err()
	})
	return name
}
