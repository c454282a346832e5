package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

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

// TestServiceStopsWhenTheDatabaseAnswersUnmigrated: a database that does
// not answer at start-up is an outage, not a reason to fail (the service
// starts and waits); once it answers and misses migrations, the service
// exits 1 naming them, and the reading that waited is not poisoned.
func TestServiceStopsWhenTheDatabaseAnswersUnmigrated(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	empty := postgrestest.NewEmpty(t)
	proxy, url := newNetProxies(t).add(t, "postgres", freeAddr(t), empty.URL, "5432", false)
	e.vars["DATABASE_URL"] = url
	p := e.start(t, "run")
	poll.Until(t, 20*time.Second, "the service runs and reports postgres down", func() bool {
		code, status := e.component("postgres")
		return code == http.StatusServiceUnavailable && status == "down"
	})
	e.xadd(t, legacyReading)

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 60*time.Second); code != 1 {
		t.Fatalf("exit %d once the unmigrated database answered, want 1\n%s", code, p.logs)
	}
	if logs := p.logs.String(); !strings.Contains(logs, "0001_readings.sql") || !strings.Contains(logs, "migrate up") {
		t.Errorf("the logs do not name the missing migrations:\n%s", logs)
	}
	if got := len(e.poisoned(t)); got != 0 {
		t.Errorf("%d messages poisoned while the schema was missing", got)
	}
}
