package qc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// TxDB is what Flag and Rebuild need: *pgxpool.Pool satisfies it.
type TxDB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ManualFlag is a period of a series flagged by hand: a row of the table
// qc_manual_flags.
type ManualFlag struct {
	// ID identifies it; set by Flag.
	ID      int64  `json:"id"`
	Station string `json:"station"`
	Sensor  string `json:"sensor"`
	// From and To bound the period [From, To) in device time. Required.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Flag is 3 (suspect) or 4 (fail).
	Flag int16 `json:"flag"`
	// Note says why, for people (maintenance, a known-bad sensor).
	Note string `json:"note,omitempty"`
	// CreatedAt is when it was added; set by Flag.
	CreatedAt time.Time `json:"created_at"`
}

// Validate reports every problem of m's own values at once, in an error
// wrapping ErrInvalid.
func (m ManualFlag) Validate() error {
	var problems []string
	if err := sensorhub.CheckStation(m.Station); err != nil {
		problems = append(problems, err.Error())
	}
	if err := sensorhub.CheckSensor(m.Sensor); err != nil {
		problems = append(problems, err.Error())
	}
	if m.Flag != sensorhub.FlagSuspect && m.Flag != sensorhub.FlagFail {
		problems = append(problems, fmt.Sprintf("flag %d is neither 3 (suspect) nor 4 (fail)", m.Flag))
	}
	switch {
	case m.From.IsZero() || m.To.IsZero():
		problems = append(problems, "the period needs both from and to")
	case !m.To.After(m.From):
		problems = append(problems, fmt.Sprintf("period [%s, %s) is empty: to must be after from", rfc3339(m.From), rfc3339(m.To)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Flag stores m and, in the same transaction, evaluates again the stored
// readings of its series in its period and those whose flags depend on
// them, announcing each change, and has the followers (Config.Followers)
// follow the readings that became or stopped being fail; readings stored
// later in the period get the flag as the processor evaluates them. It
// returns m as stored and how many stored readings changed flags.
func (p *Processor) Flag(ctx context.Context, db TxDB, m ManualFlag) (ManualFlag, int, error) {
	if err := m.Validate(); err != nil {
		return ManualFlag{}, 0, err
	}
	var changed int
	err := inTx(ctx, db, m.Station, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO qc_manual_flags (station, sensor, valid_from, valid_to, flag, note)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`, m.Station, m.Sensor, m.From, m.To, m.Flag, m.Note).Scan(&m.ID, &m.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		snap, err := loadSnapshot(ctx, tx)
		if err != nil {
			return err
		}
		var events []sensorhub.Event
		if changed, events, err = p.rebuildSeries(ctx, tx, snap, m.Station, m.Sensor, m.From, m.To); err != nil {
			return err
		}
		return p.announce(ctx, tx, events)
	})
	if err != nil {
		return ManualFlag{}, 0, fmt.Errorf("qc: flag %s/%s: %w", m.Station, m.Sensor, err)
	}
	return m, changed, nil
}

// ListFlags returns the manual flags of station (all when empty), by
// station, sensor and start.
func ListFlags(ctx context.Context, db DB, station string) ([]ManualFlag, error) {
	rows, err := db.Query(ctx, `SELECT id, station, sensor, valid_from, valid_to, flag, note, created_at
FROM qc_manual_flags WHERE $1 = '' OR station = $1 ORDER BY station, sensor, valid_from, id`, station)
	if err != nil {
		return nil, fmt.Errorf("qc: list manual flags: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ManualFlag, error) {
		var m ManualFlag
		err := row.Scan(&m.ID, &m.Station, &m.Sensor, &m.From, &m.To, &m.Flag, &m.Note, &m.CreatedAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("qc: list manual flags: %w", err)
	}
	return list, nil
}

// Scope selects the stored readings Rebuild evaluates: those of Station
// (every station when empty) with device time in [From, To) (zero: open).
type Scope struct {
	Station  string
	From, To time.Time
}

// Rebuilt is what Rebuild did.
type Rebuilt struct {
	// Series is how many (station, sensor) series it evaluated.
	Series int `json:"series"`
	// Changed is how many readings changed flags.
	Changed int `json:"changed"`
}

// Rebuild evaluates the stored readings of scope again with the current
// settings and manual flags, and those whose flags depend on them, one
// transaction per series, announcing every change as the processor does;
// in each, the followers (Config.Followers) follow the readings that
// became or stopped being fail. Doing it twice changes nothing the second
// time. Series of types that
// run no test are skipped (their readings keep flag 2). progress, if not
// nil, is called after each series with the count done and the total.
func (p *Processor) Rebuild(ctx context.Context, db TxDB, scope Scope, progress func(done, total int)) (Rebuilt, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT station, sensor FROM readings
WHERE ($1 = '' OR station = $1) AND ts >= coalesce($2, '-infinity'::timestamptz) AND ts < coalesce($3, 'infinity'::timestamptz)
ORDER BY 1, 2`, scope.Station, bound(scope.From), bound(scope.To))
	if err != nil {
		return Rebuilt{}, fmt.Errorf("qc: rebuild: list series: %w", err)
	}
	series, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]string, error) {
		var s [2]string
		err := row.Scan(&s[0], &s[1])
		return s, err
	})
	if err != nil {
		return Rebuilt{}, fmt.Errorf("qc: rebuild: list series: %w", err)
	}
	var done Rebuilt
	for i, s := range series {
		err := inTx(ctx, db, s[0], func(tx pgx.Tx) error {
			snap, err := loadSnapshot(ctx, tx)
			if err != nil || !snap.watches(p.declared, s[1]) {
				return err
			}
			n, events, err := p.rebuildSeries(ctx, tx, snap, s[0], s[1], scope.From, scope.To)
			if err != nil {
				return err
			}
			done.Series++
			done.Changed += n
			return p.announce(ctx, tx, events)
		})
		if err != nil {
			return done, fmt.Errorf("qc: rebuild %s/%s: %w", s[0], s[1], err)
		}
		if progress != nil {
			progress(i+1, len(series))
		}
	}
	return done, nil
}

func bound(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// rebuildSeries evaluates the stored readings of a series in [from, to)
// (zero: open) within tx, which holds the station's lock, stores the
// changes, moves the processor's saved state of the series along when the
// walk passes it, and has the followers follow the readings that became or
// stopped being fail. It returns how many readings changed flags and the
// events that announce the changes, then the followers'.
func (p *Processor) rebuildSeries(ctx context.Context, tx pgx.Tx, snap *snapshot, station, sensor string, from, to time.Time) (int, []sensorhub.Event, error) {
	var lo, hi *time.Time
	err := tx.QueryRow(ctx, `SELECT min(ts), max(ts) FROM readings
WHERE station = $1 AND sensor = $2 AND ts >= coalesce($3, '-infinity'::timestamptz) AND ts < coalesce($4, 'infinity'::timestamptz)`,
		station, sensor, bound(from), bound(to)).Scan(&lo, &hi)
	if err != nil {
		return 0, nil, fmt.Errorf("find readings: %w", err)
	}
	if lo == nil {
		return 0, nil, nil
	}
	var (
		raw     []byte
		st      *state
		through time.Time
	)
	err = tx.QueryRow(ctx, `SELECT state FROM processor_cursors WHERE processor = $1 AND station = $2 AND sensor = $3 FOR UPDATE`,
		Name, station, sensor).Scan(&raw)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return 0, nil, fmt.Errorf("read state: %w", err)
	case raw != nil:
		if err := json.Unmarshal(raw, &st); err != nil {
			return 0, nil, fmt.Errorf("decode state: %w", err)
		}
		if st != nil {
			through = st.Run.Last
		}
	}
	k := newWalk(ctx, tx, station, sensor, snap.limits(p.declared, station, sensor), through)
	if err := k.general(ctx, *lo, *hi); err != nil {
		return 0, nil, err
	}
	if err := save(ctx, tx, []*walk{k}); err != nil {
		return 0, nil, err
	}
	events, err := k.events()
	if err != nil {
		return 0, nil, err
	}
	followed, err := p.follow(ctx, tx, k)
	if err != nil {
		return 0, nil, err
	}
	events = append(events, followed...)
	if k.captured != nil {
		raw, err := json.Marshal(k.captured)
		if err != nil {
			return 0, nil, fmt.Errorf("encode state: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE processor_cursors SET state = $4 WHERE processor = $1 AND station = $2 AND sensor = $3`,
			Name, station, sensor, raw); err != nil {
			return 0, nil, fmt.Errorf("save state: %w", err)
		}
	}
	return len(k.changes), events, nil
}

// announce adds events to the outbox in tx, unless events are off.
func (p *Processor) announce(ctx context.Context, tx pgx.Tx, events []sensorhub.Event) error {
	if !p.events || len(events) == 0 {
		return nil
	}
	return outbox.Insert(ctx, tx, events)
}

// Follow implements calibration.Follower: a calibration changed the values
// of a series in its period, so the flags there, and those of the readings
// whose flags depend on them, are evaluated again in the calibration's
// transaction, which holds the station's lock, and the followers
// (Config.Followers) follow the readings that became or stopped being
// fail. It returns the events of the changes, then the followers'. Put it
// before the derived quantities' calibration.Follower, which then reads
// the new flags.
func (p *Processor) Follow(ctx context.Context, tx pgx.Tx, a calibration.Applied) ([]sensorhub.Event, error) {
	snap, err := loadSnapshot(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("qc: follow calibration %d: %w", a.CalibrationID, err)
	}
	if !snap.watches(p.declared, a.Sensor) {
		return nil, nil
	}
	var from, to time.Time
	if a.From != nil {
		from = *a.From
	}
	if a.To != nil {
		to = *a.To
	}
	_, events, err := p.rebuildSeries(ctx, tx, snap, a.Station, a.Sensor, from, to)
	if err != nil {
		return nil, fmt.Errorf("qc: follow calibration %d: %w", a.CalibrationID, err)
	}
	return events, nil
}

// inTx runs fn in a transaction holding station's lock, the one the sink
// holds while it stores and processes the station's readings
// (postgres.LockStation), and commits it.
func inTx(ctx context.Context, db TxDB, station string, fn func(pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := postgres.LockStation(ctx, tx, station); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

var _ calibration.Follower = (*Processor)(nil)
