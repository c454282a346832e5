package main

import (
	"bytes"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/migrations"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

func TestServiceStoresValidReadingsAndPoisonsBadOnes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// A Postgres session zone far from UTC must not shift zone-less times.
	e.vars["DATABASE_URL"] += "&timezone=Pacific%2FAuckland"
	e.start(t, "run")
	e.waitHealthy(t)

	code, body := e.health("/healthcheck")
	if code != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("healthcheck = %d %v", code, body)
	}

	// The legacy path: PUBLISH on the channel, bridged to the stream.
	if n := e.redis.Publish(t.Context(), e.stream, legacyReading).Val(); n != 1 {
		t.Fatalf("PUBLISH reached %d subscribers, want the bridge", n)
	}
	poll.Until(t, 2*time.Second, "the published reading is stored", func() bool { return e.rows(t, "") == 1 })
	var station, unit, ts string
	var value float64
	if err := e.db.Pool.QueryRow(t.Context(),
		`SELECT station, unit, value, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM readings WHERE sensor = 'temperature'`,
	).Scan(&station, &unit, &value, &ts); err != nil {
		t.Fatal(err)
	}
	if station != "default" || unit != "Cel" || value != 14 || ts != "2024-12-01 12:00:00" {
		t.Errorf("stored %s %s %v at %s, want default Cel 14 at 2024-12-01 12:00:00 UTC", station, unit, value, ts)
	}

	// The durable path: a hand-written XADD.
	humidity := `{"sensor":"humidity","value":55,"timestamp":"2024-12-01T12:00:00Z","station":"roof"}`
	e.xadd(t, humidity)
	poll.Until(t, 2*time.Second, "the XADD reading is stored", func() bool {
		return e.rows(t, "WHERE sensor = 'humidity' AND station = 'roof' AND unit = '%RH'") == 1
	})

	// Sending either again adds no row.
	e.redis.Publish(t.Context(), e.stream, legacyReading)
	e.xadd(t, humidity)

	bad := map[string]string{
		`{"sensor":"temperature","value":"hot"}`:                              "invalid_field",
		`{"sensor":"warp_core","value":1,"timestamp":"2024-12-01T12:00:00Z"}`: "unknown_sensor",
		`not json`: "invalid_json",
	}
	ids := map[string]string{}
	for payload := range bad {
		ids[e.xadd(t, payload)] = payload
	}
	// The service keeps storing good readings after bad ones.
	e.xadd(t, `{"sensor":"pressure","value":29.92,"unit":"inHg","timestamp":"2024-12-01T12:00:00Z"}`)
	poll.Until(t, 5*time.Second, "the pressure reading after the bad ones is stored", func() bool {
		return e.rows(t, "WHERE sensor = 'pressure' AND unit = 'hPa' AND abs(value - 1013.21) < 0.01") == 1
	})
	poll.Until(t, 5*time.Second, "three messages poisoned", func() bool { return len(e.poisoned(t)) == 3 })
	for _, m := range e.poisoned(t) {
		payload, ok := ids[m.Values["entry_id"].(string)]
		if !ok {
			t.Errorf("poison entry names unknown source entry: %v", m.Values)
			continue
		}
		if m.Values["payload"] != payload || m.Values["reason"] != bad[payload] || m.Values["error"] == "" || m.Values["poisoned_at"] == "" {
			t.Errorf("poison entry for %q = %v, want reason %s", payload, m.Values, bad[payload])
		}
	}
	if n := e.rows(t, ""); n != 3 {
		t.Errorf("%d rows, want 3 (temperature, humidity, pressure; repeats dropped)", n)
	}
	poll.Until(t, 5*time.Second, "nothing left pending", func() bool {
		return e.redis.XPending(t.Context(), e.stream, "sensorhub").Val().Count == 0
	})
}

func TestTransientDatabaseOutageIsRetriedNotPoisoned(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// The proxy is not started yet: nothing listens, connections are
	// refused.
	proxy, url := newNetProxies(t).add(t, "postgres", freeAddr(t), e.vars["DATABASE_URL"], "5432", false)
	e.vars["DATABASE_URL"] = url
	e.start(t, "run")
	poll.Until(t, 20*time.Second, "the service reports postgres down", func() bool {
		code, status := e.component("postgres")
		return code == http.StatusServiceUnavailable && status == "down"
	})

	e.xadd(t, legacyReading)
	time.Sleep(3 * time.Second) // several retries against the refused port
	if got := len(e.poisoned(t)); got != 0 {
		t.Fatalf("%d messages poisoned during a transient outage", got)
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the reading is stored once Postgres is reachable", func() bool { return e.rows(t, "") == 1 })
	e.waitHealthy(t)
	if got := len(e.poisoned(t)); got != 0 {
		t.Fatalf("%d messages poisoned", got)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if code, out := e.cli(t, "healthcheck"); code == 0 {
		t.Fatalf("healthcheck passed with no server: %s", out)
	}
	e.start(t, "run")
	e.waitHealthy(t)
	code, out := e.cli(t, "healthcheck")
	if code != 0 || !strings.Contains(out, `"status":"ok"`) {
		t.Fatalf("healthcheck = %d %s", code, out)
	}
	if strings.Contains(out, e.db.URL) || strings.Contains(out, "postgres://") {
		t.Errorf("health body exposes a connection string: %s", out)
	}
}

func TestPublishAndPoisonCommands(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if code, out := e.cli(t, "publish", legacyReading); code != 0 || !strings.Contains(out, "appended to stream") {
		t.Fatalf("publish = %d %s", code, out)
	}
	if n := e.redis.XLen(t.Context(), e.stream).Val(); n != 1 {
		t.Fatalf("stream has %d entries, want 1", n)
	}
	if code, out := e.cli(t, "publish", "--channel", legacyReading); code != 1 || !strings.Contains(out, "no subscriber") {
		t.Fatalf("publish --channel without a subscriber = %d %s, want failure", code, out)
	}
	if code, _ := e.cli(t, "publish"); code != 2 {
		t.Fatalf("publish without a message = %d, want usage error 2", code)
	}

	e.start(t, "run")
	e.waitHealthy(t)
	e.cli(t, "publish", `{"sensor":"temperature","value":999,"timestamp":"2024-12-01T12:00:00Z"}`)
	poll.Until(t, 5*time.Second, "the out-of-range reading is poisoned", func() bool { return len(e.poisoned(t)) == 1 })

	code, out := e.cli(t, "poison", "list")
	if code != 0 || !strings.Contains(out, "value_out_of_range") || !strings.Contains(out, "1 of 1 poisoned") {
		t.Fatalf("poison list = %d\n%s", code, out)
	}
	code, out = e.cli(t, "poison", "replay")
	if code != 0 || !strings.Contains(out, "replayed 1") {
		t.Fatalf("poison replay = %d\n%s", code, out)
	}
	// Still out of range: it comes back to the poison queue, never into the table.
	poll.Until(t, 5*time.Second, "the replayed reading is poisoned again", func() bool { return len(e.poisoned(t)) == 1 })
	if n := e.rows(t, "WHERE value = 999"); n != 0 {
		t.Errorf("%d out-of-range rows stored", n)
	}
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(t.Context(), []string{"version"}, envOf(nil), &out, &out); code != 0 || !strings.HasPrefix(out.String(), "sensorhub ") {
		t.Fatalf("version = %d %q", code, out.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"frobnicate"}, envOf(nil), &out, &out); code != 2 || !strings.Contains(out.String(), "unknown command") {
		t.Fatalf("unknown command = %d %q", code, out.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"run"}, envOf(map[string]string{"API_PORT": "x"}), &out, &out); code != 2 || !strings.Contains(out.String(), "API_PORT") {
		t.Fatalf("bad config = %d %q", code, out.String())
	}
}

func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	getenv := envOf(map[string]string{"DATABASE_URL": db.URL, "SENSORHUB_LOG_LEVEL": "warn"})
	cli := func(args ...string) (int, string) {
		var out bytes.Buffer
		return run(t.Context(), args, getenv, &out, &out), out.String()
	}
	tableExists := func() bool {
		var ok bool
		if err := db.Pool.QueryRow(t.Context(), `SELECT to_regclass('readings') IS NOT NULL`).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}

	if code, out := cli("migrate", "status"); code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("status before up = %d\n%s", code, out)
	}
	if code, out := cli("migrate", "up"); code != 0 || !strings.Contains(out, "applied 0001_readings.sql") {
		t.Fatalf("up = %d\n%s", code, out)
	}
	if !tableExists() {
		t.Fatal("no readings table after migrate up")
	}
	if code, out := cli("migrate", "up"); code != 0 || !strings.Contains(out, "0 migration(s) applied now") {
		t.Fatalf("second up = %d\n%s", code, out)
	}
	if code, out := cli("migrate", "status"); code != 0 || !strings.Contains(out, ", 0 pending") {
		t.Fatalf("status after up = %d\n%s", code, out)
	}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) < 2 {
		t.Fatalf("migration files %v: %v", files, err)
	}
	slices.Reverse(files) // newest first, the order down rolls them back
	for i, name := range files {
		if code, out := cli("migrate", "down"); code != 0 || !strings.Contains(out, "rolled back "+name) {
			t.Fatalf("down %d = %d\n%s\nwant %s rolled back", i+1, code, out, name)
		}
		if i == 0 && !tableExists() {
			t.Fatal("the first down dropped readings; it must roll back only the newest migration")
		}
	}
	if tableExists() {
		t.Fatal("readings table left after migrate down")
	}
	if code, _ := cli("migrate", "sideways"); code != 2 {
		t.Fatalf("unknown migrate command exit = %d, want 2", code)
	}
}
