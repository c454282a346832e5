package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestServiceRefusesUnmigratedDatabase checks that `sensorhub run` on a
// database that was never migrated exits at start-up with an error naming
// the missing migrations, instead of retrying "relation readings does not
// exist" forever as an outage.
func TestServiceRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	getenv := envOf(map[string]string{
		"DATABASE_URL": db.URL, "REDIS_URL": redistest.URL(), "SENSORHUB_STREAM": redistest.Name(t, "unmigrated"),
		"SENSORHUB_EVENTS_STREAM": redistest.Name(t, "unmigrated_events"), "API_HOST": "127.0.0.1", "API_PORT": port,
	})
	// Without the check the service would run until ctx ends, and exit 0.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"run"}, getenv, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "0001_readings.sql, 0002_outbox.sql, 0003_stations.sql") || !strings.Contains(out.String(), "migrate up") {
		t.Fatalf("exit %d, want 1 with an error naming every migration and `migrate up`:\n%s", code, out.String())
	}
}
