package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
)

// FuzzQueries sends arbitrary query strings to every endpoint: the answer
// is never a 5xx, a 4xx is a problem document, every answer is one the
// OpenAPI document allows, and a request the document calls invalid is
// never answered 200. go test runs the seeds; go test -fuzz FuzzQueries
// explores.
func FuzzQueries(f *testing.F) {
	fx := newFixture(f, api.Config{Now: func() time.Time { return t0.Add(time.Hour) }})
	fx.series(f, "roof", "temperature", "Cel", t0, time.Minute, 30)
	fx.rollupRows(f, "readings_5m", "roof", "temperature", t0, 5*time.Minute, 12)
	for _, seed := range []string{
		"station=roof&sensor=temperature",
		"station=roof&sensor=temperature&from=2024-12-01T00:00:00Z&to=2024-12-01T00:10:00Z&limit=3&qc_flag=2&derived=false&units=us",
		"station=roof&sensor=temperature&interval=5m&from=2024-12-01T00:00:00Z",
		"station=roof&sensor=temperature&interval=1d&from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z",
		"station=roof%27%3B+DROP+TABLE+readings%3B--&sensor=temperature",
		"station=roof&sensor=temperature&cursor=eyJ2IjoxLCJrIjoiMjAyNC0xMi0wMVQwMDowMDowMFoiLCJxIjoiIn0",
		"station=roof&sensor=temperature&limit=18446744073709551616",
		"station=roof&sensor=temperature&from=2024-12-01T00:00:00.999999999%2B14:00",
		"station=roof&sensor=temperature&from=-0001-01-01T00:00:00Z",
		"qc_flag=1,2,3,4&qc_flag=4&derived=true",
		"%",
		"units=us&units=us",
	} {
		for endpoint := range uint8(4) {
			f.Add(endpoint, seed)
		}
	}
	paths := []string{"/api/v1/readings", "/api/v1/aggregates", "/api/v1/stations", "/api/v1/stations/roof"}
	f.Fuzz(func(t *testing.T, endpoint uint8, rawQuery string) {
		path := paths[int(endpoint)%len(paths)]
		req, err := http.NewRequest(http.MethodGet, fx.srv.URL+path+"?"+rawQuery, nil)
		if err != nil || req.URL.RawQuery != rawQuery || !sendable(rawQuery) {
			t.Skip("not a query string a client can send")
		}
		docErr := fx.v.ValidateRequest(req)
		resp, body := fx.get(t, path+"?"+rawQuery)
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("GET %s?%s: %d %s", path, rawQuery, resp.StatusCode, body)
		case resp.StatusCode >= 400:
			wantProblem(t, path+"?"+rawQuery, resp, body, resp.StatusCode, problemParam(body))
		case docErr != nil:
			t.Fatalf("GET %s?%s: %d, but the OpenAPI document calls the request invalid: %v", path, rawQuery, resp.StatusCode, docErr)
		}
	})
}

// sendable reports whether a query string can go into a request line as
// it is: visible ASCII and no fragment. Go's server answers other request
// lines 400 before any handler runs.
func sendable(rawQuery string) bool {
	for i := range len(rawQuery) {
		if c := rawQuery[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}
