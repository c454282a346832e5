package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

func TestTokenGuardsTheAPIAndThePage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{Token: "correct horse"})
	f.series(t, "roof", "temperature", "Cel", t0, time.Minute, 1)
	for _, path := range []string{"/api/v1/stations", "/api/v1/stations/roof", "/api/v1/openapi.json",
		"/api/v1/readings?station=roof&sensor=temperature", "/api/v1/aggregates?station=roof&sensor=temperature&interval=1h", "/api/v1/nope", "/"} {
		for _, auth := range []string{"", "Bearer wrong", "Bearer correct horsE", "Basic Y29ycmVjdCBob3JzZQ==", "Bearer", "correct horse"} {
			resp, body := f.get(t, path, "Authorization", auth)
			p := wantProblem(t, path+" with "+auth, resp, body, http.StatusUnauthorized, "")
			if resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(p.Detail, "correct horse") {
				t.Errorf("%s with %q: WWW-Authenticate %q, detail %q", path, auth, resp.Header.Get("WWW-Authenticate"), p.Detail)
			}
		}
		for _, auth := range []string{"Bearer correct horse", "bearer correct horse"} {
			if resp, body := f.get(t, path, "Authorization", auth); resp.StatusCode == http.StatusUnauthorized {
				t.Errorf("%s with %q: 401 %s", path, auth, body)
			}
		}
	}
}

// TestReadOnlyRole serves the API through a login role that may only
// SELECT, as deploy/postgres/roles.sql sets up sensorhub_api: the API
// works, and the role cannot write.
func TestReadOnlyRole(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	var b [6]byte
	_, _ = rand.Read(b[:])
	role := "api_ro_" + hex.EncodeToString(b[:])
	quoted := pgx.Identifier{role}.Sanitize()
	schema := pgx.Identifier{db.Schema}.Sanitize()
	db.Exec(t,
		"CREATE ROLE "+quoted+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
		"GRANT USAGE ON SCHEMA "+schema+" TO "+quoted,
		// The grants of roles.sql's sensorhub_api, on the test's schema.
		"GRANT SELECT ON readings, stations, sensor_status, reading_series, readings_5m, readings_1h, readings_1d TO "+quoted,
	)
	t.Cleanup(func() {
		// The schema is dropped after this (cleanups run last first), so
		// the grants go first, then the role.
		for _, sql := range []string{"DROP OWNED BY " + quoted, "DROP ROLE " + quoted} {
			if _, err := db.Pool.Exec(context.Background(), sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	})
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	ro, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ro.Close)

	f := newFixture(t, api.Config{DB: ro})
	// newFixture made a schema of its own; the role reads db's.
	f.db = db
	f.series(t, "roof", "temperature", "Cel", t0, time.Minute, 3)
	f.exec(t, `INSERT INTO readings_1h (station, sensor, bucket, count, avg) VALUES ('roof', 'temperature', $1, 3, 10.5)`, t0)
	var s stationDoc
	f.getJSON(t, "/api/v1/stations/roof", &s)
	if len(s.Latest) != 1 || s.Latest[0].Value != 11 {
		t.Errorf("through the read-only role: %+v", s)
	}
	var a aggregatePage
	f.getJSON(t, "/api/v1/aggregates?station=roof&sensor=temperature&interval=1h&from=2024-12-01T00:00:00Z&to=2024-12-02T00:00:00Z", &a)
	if len(a.Items) != 1 {
		t.Errorf("aggregates through the read-only role: %+v", a)
	}
	if resp, body := f.get(t, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("status page through the read-only role: %d %s", resp.StatusCode, body)
	}
	for _, sql := range []string{
		`INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('roof', 'temperature', now(), 1, 'Cel')`,
		`UPDATE readings SET value = 0`,
		`DELETE FROM readings`,
		`INSERT INTO stations (id) VALUES ('evil')`,
		`UPDATE reading_series SET latest_month = now()`,
		`UPDATE readings_1h SET avg = 0`,
		`CREATE TABLE evil (x int)`,
		`TRUNCATE readings`,
	} {
		if _, err := ro.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the read-only role: %v, want permission denied", sql, err)
		}
	}
}
