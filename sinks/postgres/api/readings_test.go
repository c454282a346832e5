package api_test

import (
	"encoding/csv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
)

func TestReadingsRangeFiltersAndUnits(t *testing.T) {
	t.Parallel()
	// The open range of OpenEnd is measured up to now.
	f := newFixture(t, api.Config{Now: func() time.Time { return t0.Add(time.Hour) }})
	f.series(t, "roof", "temperature", "Cel", t0, time.Minute, 10) // 10, 10.5, … 14.5
	f.series(t, "roof", "dew_point", "Cel", t0, time.Minute, 10)
	f.exec(t, `UPDATE readings SET qc_flag = 4, qc_tests = '{spike}' WHERE sensor = 'temperature' AND ts = $1`, t0.Add(3*time.Minute))
	f.exec(t, `UPDATE readings SET qc_flag = 1 WHERE sensor = 'temperature' AND ts > $1`, t0.Add(6*time.Minute))
	f.exec(t, `UPDATE readings SET derived = true WHERE sensor = 'dew_point' AND ts < $1`, t0.Add(5*time.Minute))

	base := "/api/v1/readings?station=roof&sensor=temperature&from=2024-12-01T00:00:00Z&to=2024-12-01T00:10:00Z"
	cases := []struct {
		name, path string
		want       []float64
	}{
		{"WholeRange", base, []float64{10, 10.5, 11, 11.5, 12, 12.5, 13, 13.5, 14, 14.5}},
		// [from, to): the reading at from is in, the one at to is out.
		{"FromInclusiveToExclusive", "/api/v1/readings?station=roof&sensor=temperature&from=2024-12-01T00:02:00Z&to=2024-12-01T00:04:00Z", []float64{11, 11.5}},
		{"OffsetTimes", "/api/v1/readings?station=roof&sensor=temperature&from=2024-12-01T01:02:00%2B01:00&to=2024-12-01T01:04:00%2B01:00", []float64{11, 11.5}},
		{"OpenEnd", "/api/v1/readings?station=roof&sensor=temperature&from=2024-12-01T00:08:00Z", []float64{14, 14.5}},
		{"QCFail", base + "&qc_flag=4", []float64{11.5}},
		{"QCListAndRepeat", base + "&qc_flag=1,4&qc_flag=4", []float64{11.5, 13.5, 14, 14.5}},
		{"NotEvaluated", base + "&qc_flag=2", []float64{10, 10.5, 11, 12, 12.5, 13}},
		{"Derived", strings.Replace(base, "temperature", "dew_point", 1) + "&derived=true", []float64{10, 10.5, 11, 11.5, 12}},
		{"NotDerived", strings.Replace(base, "temperature", "dew_point", 1) + "&derived=false", []float64{12.5, 13, 13.5, 14, 14.5}},
		{"UnknownSensorIsEmpty", strings.Replace(base, "temperature", "humidity", 1), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p readingPage
			f.getJSON(t, c.path, &p)
			var got []float64
			for _, r := range p.Items {
				got = append(got, r.Value)
			}
			if !equal(got, c.want) || p.NextCursor != nil {
				t.Errorf("values %v next %v, want %v and no next page", got, p.NextCursor, c.want)
			}
		})
	}

	t.Run("USUnits", func(t *testing.T) {
		var p readingPage
		f.getJSON(t, base+"&units=us&limit=2", &p)
		// 10 °C = 50 °F, 10.5 °C = 50.9 °F.
		if len(p.Items) != 2 || p.Items[0].Value != 50 || p.Items[1].Value != 50.9 || p.Items[0].Unit != "°F" {
			t.Errorf("US units: %+v", p.Items)
		}
	})

	t.Run("CSV", func(t *testing.T) {
		resp, body := f.get(t, base+"&limit=3&qc_flag=4,2", "Accept", "text/csv")
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("Content-Type %q: %s", ct, body)
		}
		records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"station", "sensor", "ts", "value", "unit", "qc_flag", "qc_tests", "derived"},
			{"roof", "temperature", "2024-12-01T00:00:00Z", "10", "Cel", "2", "", "false"},
			{"roof", "temperature", "2024-12-01T00:01:00Z", "10.5", "Cel", "2", "", "false"},
			{"roof", "temperature", "2024-12-01T00:02:00Z", "11", "Cel", "2", "", "false"},
		}
		if len(records) != len(want) {
			t.Fatalf("CSV %q", records)
		}
		for i := range want {
			if !equal(records[i], want[i]) {
				t.Errorf("CSV row %d: %q, want %q", i, records[i], want[i])
			}
		}
		// The next page is in the Link header; it holds the flagged one.
		link := resp.Header.Get("Link")
		next, ok := strings.CutPrefix(link, "<")
		next, _, _ = strings.Cut(next, ">")
		if !ok || !strings.HasSuffix(link, `>; rel="next"`) {
			t.Fatalf("Link %q", link)
		}
		_, body = f.get(t, next, "Accept", "text/csv")
		if !strings.Contains(string(body), "2024-12-01T00:03:00Z,11.5,Cel,4,spike,false") {
			t.Errorf("next page:\n%s", body)
		}
	})
}

// TestReadingsPagesAreStableUnderInserts pages through a series while
// readings are inserted between pages, before and after the position
// reached: every reading stored before paging began is seen exactly once,
// in order; one inserted later is seen exactly when it lies after the
// position at the time of its insert.
func TestReadingsPagesAreStableUnderInserts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	f.series(t, "s", "temperature", "Cel", t0, 2*time.Second, n) // at even seconds
	want := map[time.Time]bool{}
	for i := range n {
		want[t0.Add(time.Duration(i)*2*time.Second)] = true
	}
	end := t0.Add(2 * n * time.Second)

	q := url.Values{"station": {"s"}, "sensor": {"temperature"}, "from": {t0.Format(time.RFC3339)}, "to": {end.Format(time.RFC3339)}}
	seen := map[time.Time]int{}
	var position time.Time
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		q.Set("limit", []string{"1", "7", "100", "333"}[rng.IntN(4)])
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p readingPage
		f.getJSON(t, "/api/v1/readings?"+q.Encode(), &p)
		for _, r := range p.Items {
			if !r.TS.After(position) && len(seen) > 0 {
				t.Fatalf("reading at %s after position %s: out of order or repeated", r.TS, position)
			}
			position = r.TS
			seen[r.TS]++
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
		// Readings at odd seconds, anywhere in the range: those after the
		// position must show up on later pages, those before must not.
		for range 3 {
			at := t0.Add(time.Duration(2*rng.IntN(n)+1) * time.Second)
			f.exec(t, `INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('s', 'temperature', $1, 0, 'Cel') ON CONFLICT DO NOTHING`, at)
			if at.After(position) {
				want[at] = true
			}
		}
	}
	for ts := range want {
		if seen[ts] != 1 {
			t.Errorf("reading at %s seen %d times, want once", ts, seen[ts])
		}
	}
	for ts := range seen {
		if !want[ts] {
			t.Errorf("reading at %s seen, inserted before the position it lies at", ts)
		}
	}
}

func TestReadingsPagesDefaultAndMaximumLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	f.series(t, "s", "temperature", "Cel", t0, time.Second, 10_050)
	path := "/api/v1/readings?station=s&sensor=temperature&from=2024-12-01T00:00:00Z&to=2024-12-02T00:00:00Z"
	var p readingPage
	f.getJSON(t, path, &p)
	if len(p.Items) != api.DefaultLimit || p.NextCursor == nil {
		t.Fatalf("default page: %d items, next %v", len(p.Items), p.NextCursor)
	}
	f.getJSON(t, path+"&limit=10000", &p)
	if len(p.Items) != api.MaxLimit || p.NextCursor == nil {
		t.Fatalf("largest page: %d items", len(p.Items))
	}
	f.getJSON(t, path+"&limit=10000&cursor="+*p.NextCursor, &p)
	if len(p.Items) != 50 || p.NextCursor != nil {
		t.Fatalf("last page: %d items, next %v", len(p.Items), p.NextCursor)
	}
	resp, body := f.get(t, path+"&limit=10001")
	wantProblem(t, "limit over the maximum", resp, body, http.StatusBadRequest, "limit")
}
