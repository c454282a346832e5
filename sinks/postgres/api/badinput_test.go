package api_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
)

func TestBadInputIsAProblemNamingTheParameter(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{Now: func() time.Time { return t0.Add(time.Hour) }})
	f.series(t, "roof", "temperature", "Cel", t0, time.Minute, 10)
	f.rollupRows(t, "readings_5m", "roof", "temperature", t0, 5*time.Minute, 10)

	var p readingPage
	f.getJSON(t, "/api/v1/readings?station=roof&sensor=temperature&from=2024-12-01T00:00:00Z&limit=2", &p)
	otherQueryCursor := *p.NextCursor
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"k":"not a time","q":"x"}`))

	readings := "/api/v1/readings?station=roof&sensor=temperature&"
	aggregates := "/api/v1/aggregates?station=roof&sensor=temperature&interval=5m&"
	cases := []struct {
		name, path string
		status     int
		param      string
	}{
		{"MissingStation", "/api/v1/readings?sensor=temperature", 400, "station"},
		{"MissingSensor", "/api/v1/readings?station=roof", 400, "sensor"},
		{"SQLInStation", "/api/v1/readings?sensor=temperature&station=" + url.QueryEscape("roof'; DROP TABLE readings; --"), 400, "station"},
		{"SQLInSensor", "/api/v1/readings?station=roof&sensor=" + url.QueryEscape("temperature' OR '1'='1"), 400, "sensor"},
		{"HugeStation", "/api/v1/readings?sensor=temperature&station=" + strings.Repeat("a", 10000), 400, "station"},
		{"UnknownStation", "/api/v1/readings?station=cellar&sensor=temperature", 404, "station"},
		{"UnknownStationAggregates", "/api/v1/aggregates?station=cellar&sensor=temperature&interval=1h", 404, "station"},
		{"RepeatedStation", readings + "station=roof", 400, "station"},
		{"UnknownParameter", readings + "sort=desc", 400, "sort"},
		{"MalformedQuery", readings + "from=%zz", 400, "query"},
		{"FromNotATime", readings + "from=yesterday", 400, "from"},
		{"FromWithoutZone", readings + "from=2024-12-01T00:00:00", 400, "from"},
		{"FromMonth13", readings + "from=2024-13-01T00:00:00Z", 400, "from"},
		{"FromYear10000", readings + "from=10000-01-01T00:00:00Z", 400, "from"},
		{"ToNotATime", readings + "to=1733011200", 400, "to"},
		{"FromAfterTo", readings + "from=2024-12-02T00:00:00Z&to=2024-12-01T00:00:00Z", 400, "from"},
		{"FromEqualsTo", readings + "from=2024-12-01T00:00:00Z&to=2024-12-01T00:00:00Z", 400, "from"},
		{"RangeTooLong", readings + "from=2023-01-01T00:00:00Z&to=2024-12-01T00:00:00Z", 400, "from"},
		{"RangeFromYearOne", readings + "from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z", 200, ""},
		{"RangeToFarFuture", readings + "from=2024-12-01T00:00:00Z&to=9999-12-31T23:59:59Z", 400, "from"},
		{"LimitZero", readings + "limit=0", 400, "limit"},
		{"LimitNegative", readings + "limit=-1", 400, "limit"},
		{"LimitNotANumber", readings + "limit=ten", 400, "limit"},
		{"LimitFloat", readings + "limit=1e3", 400, "limit"},
		{"LimitHuge", readings + "limit=99999999999999999999999", 400, "limit"},
		{"LimitPlus", readings + "limit=%2B5", 400, "limit"},
		{"CursorGarbage", readings + "cursor=abc", 400, "cursor"},
		{"CursorSQL", readings + "cursor=" + url.QueryEscape("' OR 1=1 --"), 400, "cursor"},
		{"CursorOfAnotherQuery", readings + "cursor=" + otherQueryCursor, 400, "cursor"},
		{"CursorForged", readings + "cursor=" + forged, 400, "cursor"},
		{"QCFlagFive", readings + "qc_flag=5", 400, "qc_flag"},
		{"QCFlagZero", readings + "qc_flag=0", 400, "qc_flag"},
		{"QCFlagWord", readings + "qc_flag=fail", 400, "qc_flag"},
		{"QCFlagSpace", readings + "qc_flag=1,%202", 400, "qc_flag"},
		{"QCFlagEmpty", readings + "qc_flag=", 400, "qc_flag"},
		{"DerivedMaybe", readings + "derived=maybe", 400, "derived"},
		{"DerivedOne", readings + "derived=1", 400, "derived"},
		{"UnitsMetric", readings + "units=metric", 400, "units"},
		{"IntervalMissing", "/api/v1/aggregates?station=roof&sensor=temperature", 400, "interval"},
		{"IntervalTwoHours", "/api/v1/aggregates?station=roof&sensor=temperature&interval=2h", 400, "interval"},
		{"IntervalSQL", "/api/v1/aggregates?station=roof&sensor=temperature&interval=" + url.QueryEscape("5m; DELETE FROM readings"), 400, "interval"},
		{"AggregatesRangeTooLong", aggregates + "from=2024-10-01T00:00:00Z&to=2024-12-01T00:00:00Z", 400, "from"},
		{"AggregatesQCFlag", aggregates + "qc_flag=1", 400, "qc_flag"},
		{"StationsUnknownParameter", "/api/v1/stations?station=roof", 400, "station"},
		{"StationsCursorGarbage", "/api/v1/stations?cursor=%00", 400, "cursor"},
		{"StationIDWithSlash", "/api/v1/stations/a%2Fb", 400, "id"},
		{"StationIDSQL", "/api/v1/stations/" + url.PathEscape("x' OR '1'='1"), 400, "id"},
		{"NoSuchEndpoint", "/api/v1/sensors", 404, ""},
		{"NoSuchVersion", "/api/v2/stations", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			resp, body := f.get(t, c.path)
			if c.status == 200 {
				if resp.StatusCode != 200 {
					t.Errorf("%d: %s", resp.StatusCode, body)
				}
				return
			}
			p := wantProblem(t, c.path, resp, body, c.status, c.param)
			if c.status == 400 && (len(p.Errors) == 0 || !strings.Contains(p.Detail, p.Errors[0].Detail[:min(20, len(p.Errors[0].Detail))])) {
				t.Errorf("errors %+v do not explain detail %q", p.Errors, p.Detail)
			}
			if len(body) > 4096 {
				t.Errorf("a %d-byte problem document: bad input must not make a big answer", len(body))
			}
		})
	}

	t.Run("EveryBadParameterIsNamed", func(t *testing.T) {
		resp, body := f.get(t, "/api/v1/readings?station=-&sensor=X&limit=0&qc_flag=9&units=si")
		p := wantProblem(t, "five bad parameters", resp, body, 400, "station")
		var names []string
		for _, e := range p.Errors {
			names = append(names, e.Parameter)
		}
		if want := []string{"limit", "qc_flag", "sensor", "station", "units"}; !equal(slices.Sorted(slices.Values(names)), want) {
			t.Errorf("errors name %v, want %v", names, want)
		}
	})

	t.Run("OnlyGET", func(t *testing.T) {
		for _, path := range []string{"/api/v1/readings", "/api/v1/stations/roof", "/api/v1/nope"} {
			resp, err := http.Post(f.srv.URL+path, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("POST %s: %d %s, want a 405 problem", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
	})
}

func TestQueryTimeoutIsA503(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{QueryTimeout: time.Nanosecond, Logger: discardLogger})
	f.series(t, "roof", "temperature", "Cel", t0, time.Minute, 3)
	for _, path := range []string{"/api/v1/stations", "/api/v1/readings?station=roof&sensor=temperature"} {
		resp, body := f.get(t, path)
		p := wantProblem(t, path, resp, body, http.StatusServiceUnavailable, "")
		if !strings.Contains(p.Detail, "timeout") {
			t.Errorf("%s: detail %q", path, p.Detail)
		}
	}
}
