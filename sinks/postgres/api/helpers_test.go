package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
	"github.com/sensorhub/sensorhub/sinks/postgres/api/apitest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// fixture is one test's API: its own schema, served in process, every
// answer checked against the OpenAPI document.
type fixture struct {
	db  *postgrestest.DB
	srv *httptest.Server
	v   *apitest.Validator
}

// newFixture serves the API of cfg on a fresh schema; cfg.DB defaults to
// the schema's pool.
func newFixture(t testing.TB, cfg api.Config) *fixture {
	t.Helper()
	db := postgrestest.New(t)
	if cfg.DB == nil {
		cfg.DB = db.Pool
	}
	a, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &fixture{db: db, srv: srv, v: apitest.NewValidator(t)}
}

func (f *fixture) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := f.db.Pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// series stores n readings of station's sensor, one every step from start,
// with the values 10, 10.5, 11, …, and the station.
func (f *fixture) series(t testing.TB, station, sensor, unit string, start time.Time, step time.Duration, n int) {
	t.Helper()
	f.exec(t, `INSERT INTO stations (id) VALUES ($1) ON CONFLICT DO NOTHING`, station)
	f.exec(t, `INSERT INTO readings (station, sensor, ts, value, unit)
		SELECT $1, $2, $3::timestamptz + i * $4::interval, 10 + i * 0.5, $5 FROM generate_series(0, $6 - 1) i`,
		station, sensor, start, step, unit, n)
}

// get sends GET path (with header pairs) and checks the answer against
// the document.
func (f *fixture) get(t testing.TB, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return f.v.Get(t, f.srv.URL+path, h)
}

// getJSON is get of a 200 JSON answer, decoded into v.
func (f *fixture) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, body := f.get(t, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// problemDoc is an RFC 9457 problem document as the API writes it.
type problemDoc struct {
	Status    int    `json:"status"`
	Title     string `json:"title"`
	Detail    string `json:"detail"`
	Parameter string `json:"parameter"`
	Errors    []struct {
		Parameter string `json:"parameter"`
		Detail    string `json:"detail"`
	} `json:"errors"`
}

// wantProblem checks that resp is a problem document of status naming
// param ("" for none) and returns it.
func wantProblem(t *testing.T, what string, resp *http.Response, body []byte, status int, param string) problemDoc {
	t.Helper()
	var p problemDoc
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", what, err, body)
	}
	if resp.StatusCode != status || p.Status != status {
		t.Errorf("%s: status %d (document %d), want %d: %s", what, resp.StatusCode, p.Status, status, body)
	}
	if p.Parameter != param {
		t.Errorf("%s: parameter %q, want %q: %s", what, p.Parameter, param, body)
	}
	return p
}

// problemParam is the parameter a problem document names.
func problemParam(body []byte) string {
	var p problemDoc
	_ = json.Unmarshal(body, &p)
	return p.Parameter
}

// readingPage and aggregatePage are list answers.
type readingPage struct {
	Items []struct {
		Station string    `json:"station"`
		Sensor  string    `json:"sensor"`
		TS      time.Time `json:"ts"`
		Value   float64   `json:"value"`
		Unit    string    `json:"unit"`
		QCFlag  int       `json:"qc_flag"`
		Derived bool      `json:"derived"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

type aggregatePage struct {
	Items []struct {
		Bucket time.Time `json:"bucket"`
		Count  int64     `json:"count"`
		Avg    *float64  `json:"avg"`
		Sum    *float64  `json:"sum"`
		Unit   *string   `json:"unit"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

type stationDoc struct {
	ID     string `json:"id"`
	Name   *string
	Status string      `json:"status"`
	Latest []latestDoc `json:"latest"`
}

type latestDoc struct {
	Sensor  string    `json:"sensor"`
	TS      time.Time `json:"ts"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	QCFlag  int       `json:"qc_flag"`
	QCTests []string  `json:"qc_tests"`
	Derived bool      `json:"derived"`
	Stale   bool      `json:"stale"`
}

var t0 = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)

var discardLogger = slog.New(slog.DiscardHandler)
