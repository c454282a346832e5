package stations_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/stations"
)

func ptr[T any](v T) *T { return &v }

// TestSinkCreatesStationOnFirstReading checks DESIGN.md §10: a station's
// first reading creates it, without a zone, and later readings leave what
// was set alone.
func TestSinkCreatesStationOnFirstReading(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stations.Set(t.Context(), db.Pool, stations.Update{ID: "roof", Name: ptr("Roof")}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	var batch []sensorhub.Reading
	for _, st := range []string{"roof", "garden", "garden", "cellar"} {
		batch = append(batch, sensorhub.Reading{Station: st, Sensor: "temperature", Time: at, Value: 1, Unit: "Cel"})
		at = at.Add(time.Second)
	}
	if _, err := sink.Write(t.Context(), sensorhub.Batch{Readings: batch}); err != nil {
		t.Fatal(err)
	}
	list, err := stations.List(t.Context(), db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID+"="+s.Name+"/"+s.Timezone)
	}
	if got := strings.Join(ids, " "); got != "cellar=/ garden=/ roof=Roof/" {
		t.Fatalf("stations = %s, want cellar, garden and roof (named Roof), none with a zone", got)
	}
}

// TestSetCreatesAndChangesOnlyWhatIsGiven checks that Set creates a missing
// station, changes only the fields given, and clears a zone given empty.
func TestSetCreatesAndChangesOnlyWhatIsGiven(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	st, err := stations.Set(ctx, db.Pool, stations.Update{ID: "roof", Name: ptr("Roof"), Timezone: ptr("America/New_York"),
		Latitude: ptr(40.7), Longitude: ptr(-74.0), ElevationM: ptr(10.5)})
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "roof" || st.Name != "Roof" || st.Timezone != "America/New_York" || *st.Latitude != 40.7 ||
		*st.Longitude != -74.0 || *st.ElevationM != 10.5 || time.Since(st.CreatedAt) > time.Minute {
		t.Fatalf("Set = %+v, want every field as given", st)
	}
	st, err = stations.Set(ctx, db.Pool, stations.Update{ID: "roof", ElevationM: ptr(12.0)})
	if err != nil || st.Name != "Roof" || st.Timezone != "America/New_York" || *st.Latitude != 40.7 || *st.ElevationM != 12 {
		t.Fatalf("Set of the elevation = %+v, %v; want only the elevation changed", st, err)
	}
	st, err = stations.Set(ctx, db.Pool, stations.Update{ID: "roof", Timezone: ptr("")})
	if err != nil || st.Timezone != "" || st.Name != "Roof" {
		t.Fatalf("Set of an empty zone = %+v, %v; want the zone cleared", st, err)
	}
}

// TestSetRefusesInvalid checks that an unknown zone and coordinates out of
// range are refused, all named in one error, and nothing is written.
func TestSetRefusesInvalid(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	if _, err := stations.Set(t.Context(), db.Pool, stations.Update{ID: "roof", Timezone: ptr("Europe/Berlin")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		u     stations.Update
		wants []string
	}{
		{"unknown zone", stations.Update{ID: "roof", Timezone: ptr("Mars/Olympus_Mons")}, []string{`"Mars/Olympus_Mons" is not an IANA time zone`}},
		{"latitude", stations.Update{ID: "roof", Latitude: ptr(90.5)}, []string{"latitude 90.5"}},
		{"longitude", stations.Update{ID: "roof", Longitude: ptr(-180.01)}, []string{"longitude -180.01"}},
		{"NaN latitude", stations.Update{ID: "roof", Latitude: ptr(math.NaN())}, []string{"latitude NaN"}},
		{"elevation", stations.Update{ID: "roof", ElevationM: ptr(math.Inf(1))}, []string{"elevation +Inf"}},
		{"every problem at once", stations.Update{ID: "bad id", Timezone: ptr("Nowhere"), Latitude: ptr(-91.0), Longitude: ptr(181.0)},
			[]string{"station", "Nowhere", "latitude -91", "longitude 181"}},
	} {
		_, err := stations.Set(t.Context(), db.Pool, c.u)
		if !errors.Is(err, stations.ErrInvalid) {
			t.Errorf("%s: Set = %v, want ErrInvalid", c.name, err)
			continue
		}
		for _, w := range c.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", c.name, err, w)
			}
		}
	}
	list, err := stations.List(t.Context(), db.Pool)
	if err != nil || len(list) != 1 || list[0].Timezone != "Europe/Berlin" || list[0].Latitude != nil {
		t.Fatalf("stations after refusals = %+v, %v; want roof as it was", list, err)
	}
}

// TestZonesFollowChanges checks that Zones serves the stations' zones from
// memory and follows a change within its refresh interval; a station
// without a zone, or with one this build does not know, gets nil (the
// default zone), the latter with one warning.
func TestZonesFollowChanges(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	if _, err := stations.Set(ctx, db.Pool, stations.Update{ID: "ny", Timezone: ptr("America/New_York")}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO stations (id, timezone) VALUES ('odd', 'Not/A_Zone'), ('plain', NULL)`); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	zones, err := stations.NewZones(stations.ZonesConfig{DB: db.Pool, Refresh: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if zones.Zone("ny") != nil {
		t.Fatal("Zone before Start is not nil")
	}
	if err := zones.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := zones.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	if loc := zones.Zone("ny"); loc == nil || loc.String() != "America/New_York" {
		t.Fatalf("Zone(ny) = %v, want America/New_York", loc)
	}
	if zones.Zone("plain") != nil || zones.Zone("odd") != nil || zones.Zone("unknown") != nil {
		t.Fatal("a station without a usable zone must get nil")
	}

	if _, err := stations.Set(ctx, db.Pool, stations.Update{ID: "ny", Timezone: ptr("Europe/Berlin")}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "Zone(ny) is Europe/Berlin", func() bool {
		loc := zones.Zone("ny")
		return loc != nil && loc.String() == "Europe/Berlin"
	})
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings about the unknown zone, want 1:\n%s", n, logs.String())
	}
}

// TestZonesUnknownUntilRead checks that Zones unread say so rather than let
// the decoder read every station in the default zone.
func TestZonesUnknownUntilRead(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	zones, err := stations.NewZones(stations.ZonesConfig{DB: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	// A database that cannot answer (here: no table yet) is an outage:
	// Start goes on, and Err holds messages back until a read succeeds.
	if err := zones.Start(t.Context()); err != nil {
		t.Fatalf("Start without the table = %v, want nil", err)
	}
	if zones.Err() == nil {
		t.Error("Err = nil before the zones were ever read")
	}
	if err := zones.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// flakyDB fails every query while down is set.
type flakyDB struct {
	stations.DB
	down atomic.Bool
}

func (d *flakyDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if d.down.Load() {
		return nil, errors.New("connection refused")
	}
	return d.DB.Query(ctx, sql, args...)
}

// TestZonesKeepServingThroughAnOutage checks that while the database is
// unreachable Zones keeps the zones it read, and logs one warning for the
// outage, not one per refresh, and one record when it is over.
func TestZonesKeepServingThroughAnOutage(t *testing.T) {
	t.Parallel()
	pg := postgrestest.New(t)
	ctx := t.Context()
	if _, err := stations.Set(ctx, pg.Pool, stations.Update{ID: "ny", Timezone: ptr("America/New_York")}); err != nil {
		t.Fatal(err)
	}
	db := &flakyDB{DB: pg.Pool}
	var logs syncbuf.Buffer
	zones, err := stations.NewZones(stations.ZonesConfig{DB: db, Refresh: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := zones.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zones.Stop(ctx) }()

	db.down.Store(true)
	poll.Until(t, 30*time.Second, "the outage is logged", func() bool { return strings.Contains(logs.String(), "zones not refreshed") })
	time.Sleep(100 * time.Millisecond) // some ten failed refreshes
	if loc := zones.Zone("ny"); loc == nil || loc.String() != "America/New_York" {
		t.Fatalf("Zone(ny) during the outage = %v, want America/New_York still", loc)
	}
	db.down.Store(false)
	poll.Until(t, 30*time.Second, "the recovery is logged", func() bool { return strings.Contains(logs.String(), "zones refreshed again") })
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1:\n%s", n, logs.String())
	}
}
