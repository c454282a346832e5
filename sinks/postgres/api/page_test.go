package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
)

func TestStatusPageShowsEveryStation(t *testing.T) {
	t.Parallel()
	queue := func(context.Context) (api.QueueStats, error) {
		return api.QueueStats{PoisonQueueLength: 17, ConsumerLag: 4}, nil
	}
	f := newFixture(t, api.Config{Queue: queue})
	f.series(t, "roof", "temperature", "Cel", t0, 5*time.Minute, 288) // the day of t0; latest 153.5 °C
	f.rollupRows(t, "readings_5m", "roof", "temperature", t0, 5*time.Minute, 288)
	f.series(t, "roof", "wind_speed", "m/s", t0, time.Minute, 3)
	f.series(t, "garden", "humidity", "%RH", t0, time.Minute, 1)
	f.exec(t, `UPDATE stations SET name = 'Garden <shed>' WHERE id = 'garden'`)
	f.exec(t, `UPDATE readings SET qc_flag = 4 WHERE station = 'roof' AND sensor = 'wind_speed'`)
	f.exec(t, `INSERT INTO sensor_status (station, sensor, stale) VALUES ('garden', 'humidity', true)`)

	resp, body := f.get(t, "/")
	page := string(body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, want := range []string{
		`id="station-roof"`, `id="station-garden"`,
		`Garden &lt;shed&gt;`, // names are escaped
		`153.5 °C`, `11 m/s`, `10 %RH`,
		`QC fail`, `<span class="badge stale">stale</span>`, `<span class="badge stale">stale</span></h2>`,
		`Poison queue: <strong id="poison">17</strong>`, `Consumer lag: <strong id="lag">4</strong>`,
		`<noscript><meta http-equiv="refresh"`, `name="viewport"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<shed>") {
		t.Error("a station name is not escaped")
	}
	// One sparkline, roof's temperature: its day has 48 half hours; the
	// values rise, so y falls from the bottom (30) to the top (2).
	points := regexp.MustCompile(`<polyline points="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(points) != 1 {
		t.Fatalf("%d sparklines, want 1", len(points))
	}
	pts := strings.Fields(points[0][1])
	if len(pts) != 48 || pts[0] != "0,30" || pts[47] != "188,2" {
		t.Errorf("sparkline points %v", pts)
	}

	t.Run("USUnits", func(t *testing.T) {
		_, body := f.get(t, "/?units=us")
		if !strings.Contains(string(body), "308.3 °F") || !strings.Contains(string(body), "24.61 mph") {
			t.Errorf("US units page:\n%s", body)
		}
	})
	t.Run("QueueUnknown", func(t *testing.T) {
		f := newFixture(t, api.Config{Logger: discardLogger, Queue: func(context.Context) (api.QueueStats, error) { return api.QueueStats{}, errors.New("redis down") }})
		_, body := f.get(t, "/")
		if !strings.Contains(string(body), `<strong id="poison">unknown</strong>`) || !strings.Contains(string(body), "No stations yet") {
			t.Errorf("page without Redis or stations:\n%s", body)
		}
	})
	t.Run("OnlyTheRoot", func(t *testing.T) {
		resp, _ := f.get(t, "/index.html")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /index.html: %d, want 404", resp.StatusCode)
		}
	})
}

// TestStatusPageWeight fills 50 stations of 6 sensors with a full day of
// 5-minute rollups: the page a browser loads (gzip) stays within 100 KB.
func TestStatusPageWeight(t *testing.T) {
	t.Parallel()
	// The page reads 86,400 rollup rows: on a loaded machine under -race
	// that may take longer than the default query timeout, and this test
	// is about weight.
	f := newFixture(t, api.Config{QueryTimeout: 5 * time.Minute})
	f.exec(t, `INSERT INTO stations (id) SELECT 'station-' || i FROM generate_series(1, 50) i`)
	f.exec(t, `INSERT INTO readings (station, sensor, ts, value, unit)
		SELECT 'station-' || st, 'sensor_' || se, $1::timestamptz + interval '1 day', st * se, 'Cel'
		FROM generate_series(1, 50) st, generate_series(1, 6) se`, t0)
	f.exec(t, `INSERT INTO readings_5m (station, sensor, bucket, count, avg)
		SELECT 'station-' || st, 'sensor_' || se, $1::timestamptz + b * interval '5 minutes', 5, sin(b / 10.0) * st + random()
		FROM generate_series(1, 50) st, generate_series(1, 6) se, generate_series(1, 288) b`, t0)

	start := time.Now()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/", nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand, so the transport leaves the body compressed
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	compressed, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d, Content-Encoding %q: %.500s", resp.StatusCode, resp.Header.Get("Content-Encoding"), compressed)
	}
	elapsed := time.Since(start)
	_, plain := f.get(t, "/")
	if n := strings.Count(string(plain), "<polyline"); n != 300 {
		t.Fatalf("%d sparklines, want 300", n)
	}
	t.Logf("status page of 50 stations × 6 sensors: %d bytes, %d gzipped, served in %s", len(plain), len(compressed), elapsed)
	if len(compressed) > 100<<10 {
		t.Errorf("the page weighs %d bytes gzipped, over 100 KB", len(compressed))
	}
}
