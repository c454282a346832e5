package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
)

// rollupRows fills table with n buckets of step from start: count 12, avg
// 10 + i, sum 12 × avg.
func (f *fixture) rollupRows(t testing.TB, table, station, sensor string, start time.Time, step time.Duration, n int) {
	t.Helper()
	f.exec(t, `INSERT INTO stations (id) VALUES ($1) ON CONFLICT DO NOTHING`, station)
	// The table name comes from the test's own constants.
	f.exec(t, `INSERT INTO `+table+` (station, sensor, bucket, count, avg, min, max, sum, min_ts, max_ts, last, last_ts, coverage)
		SELECT $1, $2, b, 12, 10 + i, 9 + i, 11 + i, 12 * (10 + i), b, b, 10 + i, b, 1
		FROM generate_series(0, $5 - 1) i, LATERAL (SELECT $3::timestamptz + i * $4::interval AS b) x`,
		station, sensor, start, step, n)
}

func TestAggregatesFromEachRollupTable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	f.rollupRows(t, "readings_5m", "roof", "temperature", t0, 5*time.Minute, 288)
	f.rollupRows(t, "readings_1h", "roof", "temperature", t0, time.Hour, 48)
	f.rollupRows(t, "readings_1d", "roof", "temperature", t0, 24*time.Hour, 400)
	f.rollupRows(t, "readings_1h", "roof", "rain", t0, time.Hour, 2)
	f.series(t, "roof", "temperature", "Cel", t0, time.Minute, 1)
	f.series(t, "roof", "rain", "mm", t0, time.Minute, 1)

	for _, c := range []struct {
		interval, from, to string
		count              int
	}{
		{"5m", "2024-12-01T00:00:00Z", "2024-12-01T01:00:00Z", 12},
		{"1h", "2024-12-01T00:00:00Z", "2024-12-02T00:00:00Z", 24},
		{"1h", "2024-12-01T23:00:00Z", "2024-12-03T00:00:00Z", 25},
		{"1d", "2024-12-01T00:00:00Z", "2025-12-01T00:00:00Z", 365},
	} {
		var p aggregatePage
		f.getJSON(t, "/api/v1/aggregates?station=roof&sensor=temperature&interval="+c.interval+"&from="+c.from+"&to="+c.to+"&limit=10000", &p)
		if len(p.Items) != c.count {
			t.Errorf("%s [%s, %s): %d buckets, want %d", c.interval, c.from, c.to, len(p.Items), c.count)
		}
		if len(p.Items) > 0 && (p.Items[0].Unit == nil || *p.Items[0].Unit != "Cel" || !p.Items[0].Bucket.Equal(mustTime(t, c.from))) {
			t.Errorf("%s: first bucket %+v", c.interval, p.Items[0])
		}
	}

	t.Run("USUnits", func(t *testing.T) {
		var p aggregatePage
		f.getJSON(t, "/api/v1/aggregates?station=roof&sensor=temperature&interval=1h&from=2024-12-01T00:00:00Z&to=2024-12-01T01:00:00Z&units=us", &p)
		// avg 10 °C = 50 °F; a sum of 12 values of 10 °C is 12 × 50 °F.
		if len(p.Items) != 1 || *p.Items[0].Avg != 50 || *p.Items[0].Sum != 600 || *p.Items[0].Unit != "°F" {
			t.Errorf("temperature in US units: %+v", p.Items)
		}
		f.getJSON(t, "/api/v1/aggregates?station=roof&sensor=rain&interval=1h&from=2024-12-01T00:00:00Z&to=2024-12-01T01:00:00Z&units=us", &p)
		// 120 mm of rain = 4.724409… in.
		if len(p.Items) != 1 || *p.Items[0].Unit != "in" || *p.Items[0].Sum != 4.72440944882 {
			t.Errorf("rain in US units: %+v", p.Items)
		}
	})

	t.Run("ETag", func(t *testing.T) {
		path := "/api/v1/aggregates?station=roof&sensor=temperature&interval=1h&from=2024-12-01T00:00:00Z&to=2024-12-01T03:00:00Z"
		resp, body := f.get(t, path)
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != http.StatusOK || etag == "" || resp.Header.Get("Cache-Control") != "public, max-age=60" {
			t.Fatalf("%d ETag %q Cache-Control %q: %s", resp.StatusCode, etag, resp.Header.Get("Cache-Control"), body)
		}
		resp, body = f.get(t, path, "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("If-None-Match with the ETag: %d %q, want 304 and no body", resp.StatusCode, body)
		}
		resp, _ = f.get(t, path, "If-None-Match", `"other", W/`+etag)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match with a list holding the weak ETag: %d, want 304", resp.StatusCode)
		}
		// A recomputed bucket changes the answer and its ETag.
		f.exec(t, `UPDATE readings_1h SET avg = 99 WHERE sensor = 'temperature' AND bucket = $1`, t0)
		resp, _ = f.get(t, path, "If-None-Match", etag)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
			t.Errorf("after a change: %d ETag %q, want 200 and a new ETag", resp.StatusCode, resp.Header.Get("ETag"))
		}
		// CSV has an ETag of its own.
		resp, body = f.get(t, path, "Accept", "text/csv")
		if resp.Header.Get("ETag") == "" || resp.Header.Get("ETag") == etag || !strings.HasPrefix(string(body), "station,sensor,bucket,count,avg,min,max,sum,min_ts,max_ts,last,last_ts,coverage,unit\n") {
			t.Errorf("CSV: ETag %q:\n%s", resp.Header.Get("ETag"), body)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		path := "/api/v1/aggregates?station=roof&sensor=temperature&interval=5m&from=2024-12-01T00:00:00Z&to=2024-12-02T00:00:00Z&limit=100"
		var total int
		for cursor := ""; ; {
			var p aggregatePage
			f.getJSON(t, path+cursor, &p)
			total += len(p.Items)
			if p.NextCursor == nil {
				break
			}
			cursor = "&cursor=" + *p.NextCursor
		}
		if total != 288 {
			t.Errorf("paged %d buckets, want 288", total)
		}
	})
}

func TestAggregatesWithATokenArePrivate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{Token: "s3cret"})
	f.v.Token = "s3cret"
	f.rollupRows(t, "readings_1d", "roof", "temperature", t0, 24*time.Hour, 3)
	resp, _ := f.get(t, "/api/v1/aggregates?station=roof&sensor=temperature&interval=1d&from=2024-12-01T00:00:00Z&to=2024-12-04T00:00:00Z")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "private, max-age=60" {
		t.Errorf("%d Cache-Control %q, want 200 and private", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
