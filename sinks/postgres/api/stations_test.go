package api_test

import (
	"math"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
)

func TestStationsListTheLatestReadingOfEverySensor(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	f.series(t, "roof", "temperature", "Cel", t0, time.Minute, 100) // latest 59.5 °C at t0+99m
	f.series(t, "roof", "wind_speed", "m/s", t0, time.Minute, 10)   // latest 14.5 m/s
	f.series(t, "garden", "pressure", "hPa", t0, time.Hour, 3)      // latest 11 hPa
	f.exec(t, `INSERT INTO stations (id, name) VALUES ('empty', 'No readings')`)
	f.exec(t, `UPDATE readings SET qc_flag = 3 WHERE station = 'roof' AND sensor = 'temperature' AND ts = $1`, t0.Add(99*time.Minute))
	f.exec(t, `INSERT INTO sensor_status (station, sensor, stale) VALUES ('roof', 'wind_speed', true), ('garden', 'pressure', false)`)

	var list struct {
		Items      []stationDoc `json:"items"`
		NextCursor *string      `json:"next_cursor"`
	}
	f.getJSON(t, "/api/v1/stations", &list)
	if len(list.Items) != 3 || list.NextCursor != nil {
		t.Fatalf("got %d stations, next %v; want 3 and no next page", len(list.Items), list.NextCursor)
	}
	byID := map[string]stationDoc{}
	for _, s := range list.Items {
		byID[s.ID] = s
	}
	roof := byID["roof"]
	if roof.Status != "stale" || len(roof.Latest) != 2 {
		t.Fatalf("roof: %+v; want status stale and 2 sensors", roof)
	}
	temp, wind := roof.Latest[0], roof.Latest[1]
	if temp.Sensor != "temperature" || temp.Value != 59.5 || !temp.TS.Equal(t0.Add(99*time.Minute)) || temp.QCFlag != 3 || temp.Stale {
		t.Errorf("roof temperature: %+v", temp)
	}
	if wind.Sensor != "wind_speed" || wind.Value != 14.5 || wind.Unit != "m/s" || !wind.Stale {
		t.Errorf("roof wind_speed: %+v", wind)
	}
	if g := byID["garden"]; g.Status != "ok" || len(g.Latest) != 1 || g.Latest[0].Value != 11 {
		t.Errorf("garden: %+v", g)
	}
	if e := byID["empty"]; e.Status != "ok" || len(e.Latest) != 0 || e.Name == nil || *e.Name != "No readings" {
		t.Errorf("empty: %+v", e)
	}

	t.Run("OneStation", func(t *testing.T) {
		var s stationDoc
		f.getJSON(t, "/api/v1/stations/garden?units=us", &s)
		// 11 hPa is 0.3248 inHg.
		if len(s.Latest) != 1 || s.Latest[0].Unit != "inHg" || math.Abs(s.Latest[0].Value-0.32483) > 1e-4 {
			t.Errorf("garden in US units: %+v", s)
		}
		resp, body := f.get(t, "/api/v1/stations/nowhere")
		wantProblem(t, "unknown station", resp, body, http.StatusNotFound, "id")
		resp, body = f.get(t, "/api/v1/stations/-bad")
		wantProblem(t, "malformed id", resp, body, http.StatusBadRequest, "id")
	})

	t.Run("Pages", func(t *testing.T) {
		var ids []string
		path := "/api/v1/stations?limit=2"
		for range 3 {
			var p struct {
				Items      []stationDoc `json:"items"`
				NextCursor *string      `json:"next_cursor"`
			}
			f.getJSON(t, path, &p)
			for _, s := range p.Items {
				ids = append(ids, s.ID)
			}
			if p.NextCursor == nil {
				break
			}
			path = "/api/v1/stations?limit=2&cursor=" + *p.NextCursor
		}
		if want := []string{"empty", "garden", "roof"}; !equal(ids, want) {
			t.Errorf("paged ids %v, want %v", ids, want)
		}
	})
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStationsLatestAcrossPartitions stores readings over a year of
// monthly partitions, and the default partition for a month without one,
// then changes them as writers can (deletes of the newest readings, a
// reading moved to another series and month by hand), and checks every
// station's latest readings against their definition, the newest row of
// each (station, sensor) in readings, with its flags and stale mark.
func TestStationsLatestAcrossPartitions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, api.Config{})
	ctx := t.Context()
	if _, err := partition.Ensure(ctx, f.db.Pool, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	year := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f.series(t, "roof", "temperature", "Cel", year, 6*time.Hour, 4*350)  // to mid-December
	f.series(t, "roof", "humidity", "%RH", year, 6*time.Hour, 4*70)      // stopped in March
	f.series(t, "roof", "wind_speed", "m/s", year, 6*time.Hour, 4*340)   // to early December
	f.series(t, "roof", "rain", "mm", year, 24*time.Hour, 30)            // January, all deleted below
	f.series(t, "roof", "pressure", "hPa", year, 24*time.Hour, 400)      // on into 2025: the default partition
	f.series(t, "garden", "temperature", "Cel", year, 24*time.Hour, 200) // to mid-July
	f.series(t, "garden", "illuminance", "lx", year, 24*time.Hour, 300)  // to late October
	f.exec(t, `INSERT INTO readings (station, sensor, ts, value, unit, derived, qc_flag, qc_tests)
		SELECT 'roof', 'dew_point', '2024-01-01'::timestamptz + i * interval '1 day', i / 10.0, 'Cel', true,
		       CASE WHEN i = 320 THEN 3 ELSE 1 END, CASE WHEN i = 320 THEN '{spike}'::text[] ELSE '{}' END
		FROM generate_series(0, 320) i`) // derived, to mid-November, the newest suspect
	f.exec(t, `DELETE FROM readings WHERE station = 'roof' AND sensor = 'wind_speed' AND ts >= '2024-12-01'`)
	f.exec(t, `DELETE FROM readings WHERE station = 'roof' AND sensor = 'rain'`)
	// By hand: garden's newest illuminance becomes a UV index of the
	// station "shed", in December.
	f.exec(t, `UPDATE readings SET station = 'shed', sensor = 'uv_index', ts = '2024-12-20T00:00:00Z'
		WHERE station = 'garden' AND sensor = 'illuminance' AND ts = (SELECT max(ts) FROM readings WHERE station = 'garden' AND sensor = 'illuminance')`)
	f.exec(t, `INSERT INTO stations (id) VALUES ('shed')`)
	f.exec(t, `INSERT INTO sensor_status (station, sensor, stale) VALUES ('roof', 'humidity', true), ('garden', 'temperature', false)`)

	var list struct {
		Items []stationDoc `json:"items"`
	}
	f.getJSON(t, "/api/v1/stations", &list)
	got := map[string][]latestDoc{}
	for _, s := range list.Items {
		got[s.ID] = s.Latest
		if stale := s.ID == "roof"; (s.Status == "stale") != stale {
			t.Errorf("%s: status %s, want stale %v", s.ID, s.Status, stale)
		}
	}

	rows, err := f.db.Pool.Query(ctx, `SELECT DISTINCT ON (r.station, r.sensor)
			r.station, r.sensor, r.ts, r.value, r.unit, r.qc_flag, r.qc_tests, r.derived, coalesce(st.stale, false)
		FROM readings r LEFT JOIN sensor_status st USING (station, sensor)
		ORDER BY r.station, r.sensor, r.ts DESC`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]latestDoc{}
	var station string
	var l latestDoc
	if _, err := pgx.ForEachRow(rows, []any{&station, &l.Sensor, &l.TS, &l.Value, &l.Unit, &l.QCFlag, &l.QCTests, &l.Derived, &l.Stale}, func() error {
		l.TS = l.TS.UTC()
		want[station] = append(want[station], l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("latest readings:\n got %+v\nwant %+v", got, want)
	}

	// The cases the data was made for, spelled out.
	newest := func(station, sensor string) time.Time {
		for _, l := range got[station] {
			if l.Sensor == sensor {
				return l.TS
			}
		}
		return time.Time{}
	}
	for _, c := range []struct {
		station, sensor string
		want            time.Time
	}{
		{"roof", "temperature", year.Add((4*350 - 1) * 6 * time.Hour)},
		{"roof", "humidity", year.Add((4*70 - 1) * 6 * time.Hour)},
		{"roof", "wind_speed", time.Date(2024, 11, 30, 18, 0, 0, 0, time.UTC)},
		{"roof", "rain", time.Time{}},
		{"roof", "pressure", year.AddDate(0, 0, 399)},
		{"roof", "dew_point", year.AddDate(0, 0, 320)},
		{"garden", "illuminance", year.AddDate(0, 0, 298)},
		{"shed", "uv_index", time.Date(2024, 12, 20, 0, 0, 0, 0, time.UTC)},
	} {
		if got := newest(c.station, c.sensor); !got.Equal(c.want) {
			t.Errorf("%s %s: newest reading at %v, want %v", c.station, c.sensor, got, c.want)
		}
	}
}
