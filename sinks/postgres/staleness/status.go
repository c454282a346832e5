package staleness

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier runs a query; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Status is the state of one series (station, sensor), for metrics and
// the read API.
type Status struct {
	Station, Sensor string
	// LastTS is the newest device time stored; zero before the first
	// reading (a series with only an interval set).
	LastTS time.Time
	// LastReceivedAt is when the series last got a new reading; zero
	// before the first.
	LastReceivedAt time.Time
	// ExpectedInterval is the interval readings are expected at: Interval
	// when set, else the learned one, else the policy's default.
	ExpectedInterval time.Duration
	// Interval is the interval set by hand (SetInterval), zero when none.
	Interval time.Duration
	// Stale reports whether the series is announced stale.
	Stale bool
	// ChangedAt is when Stale last changed; zero before the first
	// transition.
	ChangedAt time.Time
}

// List returns the state of every series, ordered by station and sensor,
// with expected intervals computed by policy (the defaults for the zero
// Policy).
func List(ctx context.Context, q Querier, policy Policy) ([]Status, error) {
	policy = policy.withDefaults()
	rows, err := q.Query(ctx, `SELECT station, sensor, last_ts, last_received_at, interval_s, learned_interval_s, stale, changed_at
FROM sensor_status ORDER BY station, sensor`)
	if err != nil {
		return nil, fmt.Errorf("staleness: list: %w", err)
	}
	var (
		out                           []Status
		st                            Status
		lastTS, receivedAt, changedAt *time.Time
		set, learned                  *float64
	)
	_, err = pgx.ForEachRow(rows, []any{&st.Station, &st.Sensor, &lastTS, &receivedAt, &set, &learned, &st.Stale, &changedAt}, func() error {
		st.LastTS, st.LastReceivedAt, st.ChangedAt = timeOrZero(lastTS), timeOrZero(receivedAt), timeOrZero(changedAt)
		st.ExpectedInterval = seconds(policy.expected(set, learned))
		st.Interval = 0
		if set != nil {
			st.Interval = seconds(*set)
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("staleness: list: %w", err)
	}
	return out, nil
}

func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
