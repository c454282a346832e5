package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/health"
)

func TestHandlerReportsComponentStates(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name       string
		checks     []health.Check
		path       string
		wantStatus int
		wantDown   []string
	}{
		{name: "all healthy", checks: []health.Check{{Name: "postgres", Func: ok}, {Name: "redis", Func: ok}}, path: "/healthcheck", wantStatus: 200},
		{name: "one down", checks: []health.Check{{Name: "postgres", Func: down}, {Name: "redis", Func: ok}}, path: "/healthcheck", wantStatus: 503, wantDown: []string{"postgres"}},
		{name: "a hanging check times out", checks: []health.Check{{Name: "consumer", Func: slow}}, path: "/healthcheck", wantStatus: 503, wantDown: []string{"consumer"}},
		{name: "readyz follows healthcheck", checks: []health.Check{{Name: "redis", Func: down}}, path: "/readyz", wantStatus: 503, wantDown: []string{"redis"}},
		{name: "livez ignores components", checks: []health.Check{{Name: "redis", Func: down}}, path: "/livez", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(health.NewHandler(tt.checks, 50*time.Millisecond))
			defer srv.Close()
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.path == "/livez" {
				return
			}
			var rep health.Report
			if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Components) != len(tt.checks) {
				t.Errorf("components = %v, want %d", rep.Components, len(tt.checks))
			}
			for _, name := range tt.wantDown {
				if c := rep.Components[name]; c.Status != health.StatusDown || c.Error == "" {
					t.Errorf("component %s = %+v, want down with an error", name, c)
				}
			}
			if wantOK := len(tt.wantDown) == 0; (rep.Status == health.StatusOK) != wantOK {
				t.Errorf("status %q with %d components down", rep.Status, len(tt.wantDown))
			}
		})
	}
}

func TestServerServesAndStops(t *testing.T) {
	t.Parallel()
	srv := health.NewServer("127.0.0.1:0", health.NewHandler(nil, 0), nil)
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Addr() + "/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "{\"status\":\"ok\",\"components\":{}}\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/livez"); err == nil {
		t.Fatal("server still answers after Stop")
	}
}

func TestServerStartFailsOnTakenPort(t *testing.T) {
	t.Parallel()
	first := health.NewServer("127.0.0.1:0", health.NewHandler(nil, 0), nil)
	if err := first.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer first.Stop(context.Background())
	second := health.NewServer(first.Addr(), health.NewHandler(nil, 0), nil)
	if err := second.Start(t.Context()); err == nil {
		t.Fatal("second server bound a taken port")
	}
}
