package qc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DB is what the settings functions need: *pgxpool.Pool, *pgx.Conn and
// pgx.Tx satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrInvalid is wrapped by the errors of settings and manual flags refused
// for their own values.
var ErrInvalid = errors.New("invalid quality-control setting")

// Settings overrides a sensor type's declared limits (sensorhub.QC) for one
// station or, with Station "", for every station: a row of the table
// qc_settings. Nil fields keep the limit below (the all-stations row, then
// the type's declaration); 0 turns a test off.
type Settings struct {
	// Station is the station, "" for every station.
	Station string `json:"station"`
	// Sensor is the sensor type.
	Sensor string `json:"sensor"`
	// Climatology replaces the type's monthly ranges with one range for
	// every month; {0, 0} turns the test off.
	Climatology *sensorhub.Range `json:"climatology,omitempty"`
	// Spike, RateOfChange (per minute), FlatLineCount, FlatLinePeriod,
	// FlatLineTolerance and MaxGap replace the fields of sensorhub.QC.
	Spike             *float64       `json:"spike,omitempty"`
	RateOfChange      *float64       `json:"rate_of_change,omitempty"`
	FlatLineCount     *int           `json:"flat_line_count,omitempty"`
	FlatLinePeriod    *time.Duration `json:"flat_line_period,omitempty"`
	FlatLineTolerance *float64       `json:"flat_line_tolerance,omitempty"`
	MaxGap            *time.Duration `json:"max_gap,omitempty"`
	// UpdatedAt is when the row last changed; set by the database.
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate reports every problem of s's own values at once, in an error
// wrapping ErrInvalid.
func (s Settings) Validate() error {
	var problems []string
	if s.Station != "" {
		if err := sensorhub.CheckStation(s.Station); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if err := sensorhub.CheckSensor(s.Sensor); err != nil {
		problems = append(problems, err.Error())
	}
	if c := s.Climatology; c != nil && (notFinite(c.Min) || notFinite(c.Max) || c.Min > c.Max) {
		problems = append(problems, fmt.Sprintf("climatology [%v, %v] is not a range of finite numbers", c.Min, c.Max))
	}
	for name, v := range map[string]*float64{"spike": s.Spike, "rate of change": s.RateOfChange, "flat line tolerance": s.FlatLineTolerance} {
		if v != nil && (notFinite(*v) || *v < 0) {
			problems = append(problems, fmt.Sprintf("%s %v must be a finite number, 0 or more", name, *v))
		}
	}
	if s.FlatLineCount != nil && *s.FlatLineCount < 0 {
		problems = append(problems, fmt.Sprintf("flat line count %d must be 0 or more", *s.FlatLineCount))
	}
	if s.FlatLinePeriod != nil && *s.FlatLinePeriod < 0 {
		problems = append(problems, fmt.Sprintf("flat line period %s must be 0 or more", *s.FlatLinePeriod))
	}
	if s.MaxGap != nil && *s.MaxGap <= 0 {
		problems = append(problems, fmt.Sprintf("max gap %s must be more than 0", *s.MaxGap))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

func notFinite(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// apply returns q with s's overrides.
func (s Settings) apply(q sensorhub.QC) sensorhub.QC {
	if s.Climatology != nil {
		q.Climatology = sensorhub.AllYear(s.Climatology.Min, s.Climatology.Max)
	}
	set(&q.Spike, s.Spike)
	set(&q.RateOfChange, s.RateOfChange)
	set(&q.FlatLine.Count, s.FlatLineCount)
	set(&q.FlatLine.Period, s.FlatLinePeriod)
	set(&q.FlatLine.Tolerance, s.FlatLineTolerance)
	set(&q.MaxGap, s.MaxGap)
	return q
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Table qc_settings of migration 0007_quality.sql. Do not rename the table
// or its columns.
const (
	// upsertSettings merges the fields given into the row: a null
	// parameter keeps the stored value.
	upsertSettings = `INSERT INTO qc_settings AS s (station, sensor, climatology_min, climatology_max, spike, rate_of_change,
  flat_line_count, flat_line_period, flat_line_tolerance, max_gap)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8 * interval '1 microsecond', $9, $10 * interval '1 microsecond')
ON CONFLICT (station, sensor) DO UPDATE SET
  climatology_min = coalesce(excluded.climatology_min, s.climatology_min),
  climatology_max = coalesce(excluded.climatology_max, s.climatology_max),
  spike = coalesce(excluded.spike, s.spike),
  rate_of_change = coalesce(excluded.rate_of_change, s.rate_of_change),
  flat_line_count = coalesce(excluded.flat_line_count, s.flat_line_count),
  flat_line_period = coalesce(excluded.flat_line_period, s.flat_line_period),
  flat_line_tolerance = coalesce(excluded.flat_line_tolerance, s.flat_line_tolerance),
  max_gap = coalesce(excluded.max_gap, s.max_gap),
  updated_at = now()`
	selectSettings = `SELECT station, sensor, climatology_min, climatology_max, spike, rate_of_change, flat_line_count,
  (extract(epoch FROM flat_line_period) * 1000000)::bigint, flat_line_tolerance,
  (extract(epoch FROM max_gap) * 1000000)::bigint, updated_at
FROM qc_settings ORDER BY sensor, station`
	deleteSettings = `DELETE FROM qc_settings WHERE station = $1 AND sensor = $2`
)

// Set stores s, validated, merging the fields given into the stored row of
// its station and sensor, if any. New settings apply to readings evaluated
// from then on (within the processor's Refresh); Rebuild re-evaluates the
// stored ones.
func Set(ctx context.Context, db DB, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var cmin, cmax *float64
	if s.Climatology != nil {
		cmin, cmax = &s.Climatology.Min, &s.Climatology.Max
	}
	_, err := db.Exec(ctx, upsertSettings, s.Station, s.Sensor, cmin, cmax, s.Spike, s.RateOfChange, s.FlatLineCount,
		micros(s.FlatLinePeriod), s.FlatLineTolerance, micros(s.MaxGap))
	if err != nil {
		return fmt.Errorf("qc: set %s: %w", s.target(), err)
	}
	return nil
}

// Reset deletes the settings of station ("" for every station) and
// sensor; it reports whether there were any.
func Reset(ctx context.Context, db DB, station, sensor string) (bool, error) {
	tag, err := db.Exec(ctx, deleteSettings, station, sensor)
	if err != nil {
		return false, fmt.Errorf("qc: reset %s/%s: %w", cmpOr(station, "all"), sensor, err)
	}
	return tag.RowsAffected() > 0, nil
}

func (s Settings) target() string { return cmpOr(s.Station, "all") + "/" + s.Sensor }

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func micros(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	us := d.Microseconds()
	return &us
}

// ListSettings returns every stored row of qc_settings, by sensor and
// station.
func ListSettings(ctx context.Context, db DB) ([]Settings, error) {
	rows, err := db.Query(ctx, selectSettings)
	if err != nil {
		return nil, fmt.Errorf("qc: list settings: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Settings, error) {
		var (
			s              Settings
			cmin, cmax     *float64
			period, maxGap *int64
		)
		err := row.Scan(&s.Station, &s.Sensor, &cmin, &cmax, &s.Spike, &s.RateOfChange, &s.FlatLineCount,
			&period, &s.FlatLineTolerance, &maxGap, &s.UpdatedAt)
		if cmin != nil && cmax != nil {
			s.Climatology = &sensorhub.Range{Min: *cmin, Max: *cmax}
		}
		s.FlatLinePeriod, s.MaxGap = duration(period), duration(maxGap)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("qc: list settings: %w", err)
	}
	return list, nil
}

func duration(us *int64) *time.Duration {
	if us == nil {
		return nil
	}
	d := time.Duration(*us) * time.Microsecond
	return &d
}
