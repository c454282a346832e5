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

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
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

// Name returns a key name unique to this test run, starting with prefix
// (which holds no glob character), and deletes the key and every key whose
// name starts with it when the test ends: its poison stream (".poison"),
// nack hash (":nacks"), events stream and whatever else the test named
// after it.
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
		var keys []string
		for iter := c.Scan(ctx, 0, name+"*", 1000).Iterator(); iter.Next(ctx); {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
	})
	return name
}

// Events reads every event on stream, in stream order, as the outbox
// forwarder wrote them. It fails the test on an entry that is not an event,
// or whose plain type field disagrees with the event it holds.
func Events(t testing.TB, client goredis.UniversalClient, stream string) []sensorhub.Event {
	t.Helper()
	entries, err := client.XRange(t.Context(), stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("redistest: read events of %s: %v", stream, err)
	}
	out := make([]sensorhub.Event, 0, len(entries))
	for _, entry := range entries {
		msg, err := redisstream.DefaultMarshallerUnmarshaller{}.Unmarshal(entry.Values)
		if err != nil {
			t.Fatalf("redistest: entry %s: %v", entry.ID, err)
		}
		e, err := sensorhub.ParseEvent(msg)
		if err != nil {
			t.Fatalf("redistest: entry %s: %v", entry.ID, err)
		}
		if entry.Values["type"] != e.Type {
			t.Errorf("redistest: entry %s: field type = %v, event type %s", entry.ID, entry.Values["type"], e.Type)
		}
		out = append(out, e)
	}
	return out
}
