package api_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
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
