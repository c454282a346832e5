package main

// The read API and status page served by the real binary (docs/api.md),
// the page loaded in headless Chromium.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/sensorhub/sensorhub/sinks/postgres/api/apitest"
)

// sendDay sends, in one batch, a day of readings of station's sensor five
// minutes apart from start, value(i) each, and waits until they are stored.
func (e *testEnv) sendDay(t *testing.T, station, sensor string, start time.Time, value func(i int) float64) {
	t.Helper()
	var batch []map[string]any
	for i := range 288 {
		batch = append(batch, map[string]any{"station": station, "sensor": sensor, "value": value(i),
			"timestamp": start.Add(time.Duration(i) * 5 * time.Minute).Format(time.RFC3339)})
	}
	b, _ := json.Marshal(batch)
	e.xadd(t, string(b))
	poll.Until(t, 30*time.Second, fmt.Sprintf("288 readings of %s/%s stored", station, sensor), func() bool {
		return e.rows(t, "WHERE station = $1 AND sensor = $2", station, sensor) == 288
	})
}

// rolledUp waits until the service's rollup worker has the 5-minute
// buckets of every reading stored.
func (e *testEnv) rolledUp(t *testing.T) {
	t.Helper()
	poll.Until(t, time.Minute, "the 5-minute rollups of every reading", func() bool {
		var missing int
		err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM (
			SELECT station, sensor, date_bin('5 minutes', ts, 'epoch') AS bucket, count(*) AS n FROM readings GROUP BY 1, 2, 3) r
			LEFT JOIN readings_5m b USING (station, sensor, bucket) WHERE b.count IS DISTINCT FROM r.n`).Scan(&missing)
		return err == nil && missing == 0
	})
}

func TestAPIAndStatusPageOfTheBinary(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the status page test needs Debian's chromium: make test installs it (make test-deps)")
	}
	e := newTestEnv(t)
	// The page's tiles and sparklines are counted below: no derived
	// quantities (dew point and absolute humidity would add two of each).
	e.vars["SENSORHUB_DERIVED"] = "false"
	e.start(t)
	e.waitHealthy(t)
	day := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	e.sendDay(t, "roof", "temperature", day, func(i int) float64 { return 10 + 5*math.Sin(float64(i)/288*2*math.Pi) })
	e.sendDay(t, "roof", "humidity", day, func(i int) float64 { return 60 + float64(i%10) })
	e.xadd(t, `{"sensor": "temperature", "value": "warm", "timestamp": "2024-12-01 12:00:00"}`)
	poll.Until(t, 30*time.Second, "the bad reading poisoned", func() bool { return len(e.poisoned(t)) == 1 })
	e.rolledUp(t)

	v := apitest.NewValidator(t)
	base := "http://" + e.api
	var stations struct {
		Items []struct {
			ID     string `json:"id"`
			Latest []struct {
				Sensor string  `json:"sensor"`
				Value  float64 `json:"value"`
				Unit   string  `json:"unit"`
			} `json:"latest"`
		} `json:"items"`
	}
	resp, body := v.Get(t, base+"/api/v1/stations", nil)
	if err := json.Unmarshal(body, &stations); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(stations.Items) != 1 || len(stations.Items[0].Latest) != 2 || stations.Items[0].Latest[1].Sensor != "temperature" {
		t.Fatalf("stations: %s", body)
	}
	lastTemp := stations.Items[0].Latest[1].Value
	if want := 10 + 5*math.Sin(287.0/288*2*math.Pi); math.Abs(lastTemp-want) > 1e-9 {
		t.Errorf("latest temperature %v, want %v", lastTemp, want)
	}
	for path, want := range map[string]int{
		"/api/v1/readings?station=roof&sensor=temperature&from=2024-12-01T00:00:00Z&to=2024-12-02T00:00:00Z":                288,
		"/api/v1/aggregates?station=roof&sensor=temperature&interval=5m&from=2024-12-01T00:00:00Z&to=2024-12-02T00:00:00Z":  288,
		"/api/v1/readings?station=roof&sensor=humidity&from=2024-12-01T12:00:00Z&to=2024-12-01T13:00:00Z&limit=5&qc_flag=1": 5,
	} {
		var p struct{ Items []json.RawMessage }
		resp, body := v.Get(t, base+path, nil)
		if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != 200 || len(p.Items) != want {
			t.Errorf("GET %s: %d, %d items, want %d: %.300s", path, resp.StatusCode, len(p.Items), want, body)
		}
	}

	// The page in a real browser: the DOM after load, and a screenshot at
	// a phone's size.
	dir := t.ArtifactDir()
	dom := runChromium(t, chromium, "--dump-dom", base+"/")
	for _, want := range []string{`id="station-roof"`, "temperature", fmt.Sprintf("%s °C", formatTwoDecimals(lastTemp)),
		"humidity", "%RH", `Poison queue: <strong id="poison">1</strong>`, `Consumer lag: <strong id="lag">0</strong>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page in Chromium lacks %q", want)
		}
	}
	// Two sparklines of a full day: 48 half hours each. Temperature is a
	// sine: its highest point (y 2) is a quarter into the day.
	lines := regexp.MustCompile(`<polyline points="([^"]*)"`).FindAllStringSubmatch(dom, -1)
	if len(lines) != 2 {
		t.Fatalf("%d sparklines in the page, want 2", len(lines))
	}
	for _, l := range lines {
		if n := len(strings.Fields(l[1])); n != 48 {
			t.Errorf("a sparkline of %d points, want 48: %s", n, l[1])
		}
	}
	if temp := strings.Fields(lines[1][1]); temp[12] != "48,2" {
		t.Errorf("temperature's sparkline peaks elsewhere: %v", temp)
	}
	shot := filepath.Join(dir, "status-page-phone.png")
	runChromium(t, chromium, "--screenshot="+shot, "--window-size=412,915", "--hide-scrollbars", base+"/")
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 5000 {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(png), err)
	}
	t.Logf("screenshot of the status page: %s", shot)
}

// runChromium runs headless Chromium with args and returns its output.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, append([]string{"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + t.TempDir()}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// formatTwoDecimals formats v as the page does.
func formatTwoDecimals(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", math.Round(v*100)/100), "0"), ".")
}

func TestAPITokenLeavesHealthAndMetricsOpen(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars["SENSORHUB_API_TOKEN_FILE"] = tokenFile
	e.start(t)
	e.waitHealthy(t)
	for path, want := range map[string]int{"/healthcheck": 200, "/readyz": 200, "/livez": 200, "/metrics": 200,
		"/api/v1/stations": 401, "/api/v1/openapi.json": 401, "/": 401} {
		if code, _ := getRaw("http://" + e.api + path); code != want {
			t.Errorf("GET %s without the token: %d, want %d", path, code, want)
		}
	}
	v := apitest.NewValidator(t)
	v.Token = "s3cret-token"
	if resp, body := v.Get(t, "http://"+e.api+"/api/v1/stations", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("with the token: %d %s", resp.StatusCode, body)
	}
}

func TestAPIConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_API_DATABASE_URL"] = "postgres://u:hunter2@[::1"
	e.vars["SENSORHUB_API_TOKEN"] = "a"
	e.vars["SENSORHUB_API_TOKEN_FILE"] = "/nonexistent"
	code, out := e.cli(t, "run")
	if code != exitUsage || !strings.Contains(out, "SENSORHUB_API_DATABASE_URL") || !strings.Contains(out, "SENSORHUB_API_TOKEN") || strings.Contains(out, "hunter2") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
