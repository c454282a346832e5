package staleness

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer runs a statement; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SetInterval sets the expected interval of the series (station, sensor)
// by hand, replacing the learned one, whether or not the series has
// reported yet. It takes effect at the next sweep. d must be positive.
func SetInterval(ctx context.Context, db Execer, station, sensor string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("staleness: set interval of %s/%s: %s is not positive", station, sensor, d)
	}
	_, err := db.Exec(ctx, `INSERT INTO sensor_status (station, sensor, interval_s) VALUES ($1, $2, $3)
ON CONFLICT (station, sensor) DO UPDATE SET interval_s = excluded.interval_s`, station, sensor, d.Seconds())
	if err != nil {
		return fmt.Errorf("staleness: set interval of %s/%s: %w", station, sensor, err)
	}
	return nil
}

// ClearInterval removes the interval set by hand for (station, sensor):
// the learned one applies again. Clearing an interval that is not set is
// a no-op.
func ClearInterval(ctx context.Context, db Execer, station, sensor string) error {
	if _, err := db.Exec(ctx, `UPDATE sensor_status SET interval_s = NULL WHERE station = $1 AND sensor = $2`, station, sensor); err != nil {
		return fmt.Errorf("staleness: clear interval of %s/%s: %w", station, sensor, err)
	}
	return nil
}

// Interval is one SENSOR=DURATION setting, as ParseInterval reads it. A
// zero Duration means: clear the interval set by hand.
type Interval struct {
	Sensor   string
	Duration time.Duration
}

// sensorPattern is the sensor type rule of the message contract
// (DESIGN.md §2).
var sensorPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ParseInterval reads the value of the --interval flag of `station set`:
// SENSOR=DURATION, the duration in Go's form (90s, 5m, 1h30m; at least a
// millisecond), or SENSOR= (empty) to clear it.
func ParseInterval(s string) (Interval, error) {
	sensor, dur, ok := strings.Cut(s, "=")
	if !ok {
		return Interval{}, fmt.Errorf("interval %q: want SENSOR=DURATION, such as temperature=5m", s)
	}
	var errs []error
	if !sensorPattern.MatchString(sensor) {
		errs = append(errs, fmt.Errorf("sensor %q does not match %s", sensor, sensorPattern))
	}
	var d time.Duration
	if dur != "" {
		var err error
		if d, err = time.ParseDuration(dur); err != nil || d < time.Millisecond {
			errs = append(errs, fmt.Errorf("duration %q is not one of at least 1ms, such as 90s or 5m", dur))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Interval{}, fmt.Errorf("interval %q: %w", s, err)
	}
	return Interval{Sensor: sensor, Duration: d}, nil
}

// Apply sets or, for a zero Duration, clears the interval of the series
// (station, i.Sensor).
func (i Interval) Apply(ctx context.Context, db Execer, station string) error {
	if i.Duration == 0 {
		return ClearInterval(ctx, db, station, i.Sensor)
	}
	return SetInterval(ctx, db, station, i.Sensor, i.Duration)
}
