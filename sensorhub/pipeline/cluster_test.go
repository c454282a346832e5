package pipeline_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers/temperature"
	"github.com/sensorhub/sensorhub/internal/testserver"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestRedisCluster runs a pipeline on a Redis Cluster of three masters,
// with hash-tagged streams: a reading is stored and its readings.stored
// event forwarded, and untagged names are refused.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := testserver.StartRedisCluster(t, 3, 0)
	client := goredis.NewClusterClient(cluster.Options())
	t.Cleanup(func() { _ = client.Close() })
	db := postgrestest.New(t)

	if _, err := pipeline.New(pipeline.Config{DB: db.Pool, RedisCluster: cluster.Options()}, temperature.Type()); err == nil ||
		!strings.Contains(err.Error(), "hash slot") {
		t.Errorf("New with the default stream on a cluster = %v, want the hash slot refusal", err)
	}

	tag := "{" + strings.ToLower(rand.Text()[:10]) + "}"
	stream, events := tag+"stream", tag+"events"
	p, err := pipeline.New(pipeline.Config{DB: db.Pool, RedisCluster: cluster.Options(), Stream: stream, Events: true, EventsStream: events,
		Logger: slog.New(slog.DiscardHandler)}, temperature.Type())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload",
		`{"sensor":"temperature","value":14,"timestamp":"2024-12-01T12:00:00Z"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		stored := false
		for _, e := range redistest.Events(t, client, events) {
			stored = stored || e.Type == sensorhub.EventReadingsStored
		}
		if stored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no readings.stored event on the cluster's events stream after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var n int
	if err := db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM readings").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d readings stored (%v), want 1", n, err)
	}
}
