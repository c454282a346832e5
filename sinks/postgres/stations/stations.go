// Package stations manages the table stations (DESIGN.md §10): a station's
// name, position, elevation and IANA time zone, and Zones, the in-memory
// view of those zones that the decoder reads a station's zone-less device
// times in.
//
// The Postgres sink creates a station on its first reading; Set creates or
// changes one, List lists them:
//
//	tz := "America/New_York"
//	st, err := stations.Set(ctx, pool, stations.Update{ID: "roof", Timezone: &tz})
//	...
//	zones, err := stations.NewZones(stations.ZonesConfig{DB: pool})
//	err = zones.Start(ctx) // then refreshed every ZonesConfig.Refresh
//	cfg.Decoder.Zones = zones
package stations

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DB is what the package needs from PostgreSQL; *pgxpool.Pool and *pgx.Conn
// satisfy it.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Station is a row of the table stations.
type Station struct {
	// ID is the station id readings carry (readings.station).
	ID string `json:"id"`
	// Name is a name for people; empty when none was set.
	Name string `json:"name,omitempty"`
	// Latitude and Longitude are WGS 84 degrees, nil when unknown.
	Latitude  *float64 `json:"latitude,omitempty"`
	Longitude *float64 `json:"longitude,omitempty"`
	// ElevationM is the height above sea level in metres, nil when unknown.
	ElevationM *float64 `json:"elevation_m,omitempty"`
	// Timezone is the IANA zone of the station's zone-less device times;
	// empty means the service's default (SENSORHUB_TIMEZONE).
	Timezone string `json:"timezone,omitempty"`
	// CreatedAt is when the station was first seen or set.
	CreatedAt time.Time `json:"created_at"`
}

// Update is what Set changes in a station: the fields that are not nil.
// An empty Name or Timezone clears it.
type Update struct {
	ID         string
	Name       *string
	Timezone   *string
	Latitude   *float64
	Longitude  *float64
	ElevationM *float64
}

// ErrInvalid is wrapped by the error of an Update that Set refuses
// unwritten: a bad id, an unknown time zone, coordinates out of range.
var ErrInvalid = errors.New("invalid station")

// Validate reports every problem of u at once, in an error wrapping
// ErrInvalid.
func (u Update) Validate() error {
	var problems []string
	if err := sensorhub.CheckStation(u.ID); err != nil {
		problems = append(problems, err.Error())
	}
	if u.Timezone != nil && *u.Timezone != "" {
		if _, err := time.LoadLocation(*u.Timezone); err != nil {
			problems = append(problems, fmt.Sprintf("timezone %.80q is not an IANA time zone such as Europe/Berlin", *u.Timezone))
		}
	}
	if u.Latitude != nil && !(math.Abs(*u.Latitude) <= 90) { // NaN fails too
		problems = append(problems, fmt.Sprintf("latitude %v is not within [-90, 90]", *u.Latitude))
	}
	if u.Longitude != nil && !(math.Abs(*u.Longitude) <= 180) {
		problems = append(problems, fmt.Sprintf("longitude %v is not within [-180, 180]", *u.Longitude))
	}
	if u.ElevationM != nil && (math.IsNaN(*u.ElevationM) || math.IsInf(*u.ElevationM, 0)) {
		problems = append(problems, fmt.Sprintf("elevation %v is not a finite number", *u.ElevationM))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// columns are the table's columns as Station holds them.
const columns = `id, coalesce(name, ''), latitude, longitude, elevation_m, coalesce(timezone, ''), created_at`

// Set applies u to its station, creating the station when it does not
// exist yet, and returns the station as stored. An invalid u is refused
// unwritten (see Update.Validate). A running service reads a changed zone
// within its Zones' refresh interval; readings stored before keep their
// instants.
func Set(ctx context.Context, db DB, u Update) (Station, error) {
	if err := u.Validate(); err != nil {
		return Station{}, err
	}
	rows, err := db.Query(ctx, `INSERT INTO stations AS s (id, name, latitude, longitude, elevation_m, timezone)
VALUES ($1, nullif($2, ''), $3, $4, $5, nullif($6, ''))
ON CONFLICT (id) DO UPDATE SET
  name        = CASE WHEN $7 THEN excluded.name ELSE s.name END,
  latitude    = CASE WHEN $8 THEN excluded.latitude ELSE s.latitude END,
  longitude   = CASE WHEN $9 THEN excluded.longitude ELSE s.longitude END,
  elevation_m = CASE WHEN $10 THEN excluded.elevation_m ELSE s.elevation_m END,
  timezone    = CASE WHEN $11 THEN excluded.timezone ELSE s.timezone END
RETURNING `+columns,
		u.ID, deref(u.Name), u.Latitude, u.Longitude, u.ElevationM, deref(u.Timezone),
		u.Name != nil, u.Latitude != nil, u.Longitude != nil, u.ElevationM != nil, u.Timezone != nil)
	if err != nil {
		return Station{}, fmt.Errorf("stations: set %s: %w", u.ID, err)
	}
	st, err := pgx.CollectExactlyOneRow(rows, scanStation)
	if err != nil {
		return Station{}, fmt.Errorf("stations: set %s: %w", u.ID, err)
	}
	return st, nil
}

// List returns every station, ordered by id.
func List(ctx context.Context, db DB) ([]Station, error) {
	rows, err := db.Query(ctx, `SELECT `+columns+` FROM stations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("stations: list: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanStation)
	if err != nil {
		return nil, fmt.Errorf("stations: list: %w", err)
	}
	return list, nil
}

func scanStation(row pgx.CollectableRow) (Station, error) {
	var s Station
	err := row.Scan(&s.ID, &s.Name, &s.Latitude, &s.Longitude, &s.ElevationM, &s.Timezone, &s.CreatedAt)
	return s, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
