// Package checker verifies sensorhub's delivery guarantee the way Jepsen
// checks a database: producers log what Redis told them about every reading
// they sent, and after the system is quiet the log is compared with the rows
// in PostgreSQL.
//
// A producer records each reading as OK (XADD returned an entry id), Failed
// (Redis answered with an error, so the entry was not added) or Unknown (a
// timeout or a broken connection: it may or may not have been added).
// Check then counts, over the readings table:
//
//   - lost: readings recorded OK that have no row;
//   - unexpected: rows that no producer sent, rows of a Failed reading, and
//     rows whose value differs from the one sent;
//   - duplicated: natural keys (station, sensor, ts) with more than one row;
//   - recovered: Unknown readings that do have a row, which is allowed.
//
// A run is valid when lost, unexpected and duplicated are all 0.
//
//	log := checker.NewLog()
//	p := checker.Producer{Client: rdb, Stream: "sensor_stream", Log: log, Station: "chk"}
//	p.Send(ctx, 10_000)
//	... faults, then quiescence ...
//	report, err := log.Check(ctx, pool)
//	if !report.Valid() { t.Error(report) }
package checker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Outcome is what a producer learnt about one reading it sent.
type Outcome int

const (
	// OK means Redis acknowledged the entry: it must be stored.
	OK Outcome = iota + 1
	// Failed means Redis refused the entry: it must not be stored.
	Failed
	// Unknown means the producer cannot tell: it may be stored, once.
	Unknown
)

// String returns "ok", "failed" or "unknown".
func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Key is a reading's natural key, the primary key of the readings table.
type Key struct {
	Station string
	Sensor  string
	Time    time.Time
}

func (k Key) String() string {
	return k.Station + "/" + k.Sensor + "@" + k.Time.UTC().Format(time.RFC3339Nano)
}

// Reading is one reading a producer sent, in the canonical unit of its
// sensor type so that the stored value can be compared with it.
type Reading struct {
	Key
	Value float64
}

type op struct {
	value   float64
	outcome Outcome
}

// Log is the history of every reading the producers sent. It is safe for
// concurrent use.
type Log struct {
	mu  sync.Mutex
	ops map[Key]op
}

// NewLog returns an empty log.
func NewLog() *Log { return &Log{ops: make(map[Key]op)} }

// Record logs what became of r. Recording a key twice keeps the later
// outcome, for a producer that retries a reading.
func (l *Log) Record(r Reading, o Outcome) {
	r.Time = r.Time.UTC()
	l.mu.Lock()
	l.ops[r.Key] = op{value: r.Value, outcome: o}
	l.mu.Unlock()
}

// Count returns how many readings were recorded with outcome o.
func (l *Log) Count(o Outcome) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, op := range l.ops {
		if op.outcome == o {
			n++
		}
	}
	return n
}

// Querier runs a query; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// maxExamples bounds the keys a Report lists per anomaly.
const maxExamples = 5

// Report is the outcome of Check.
type Report struct {
	// Sent counts the recorded readings by outcome.
	OK, Failed, Unknown int
	// Rows is the number of rows in the readings table.
	Rows int
	// Lost, Unexpected, Duplicated and Recovered are the anomaly counts
	// the package documentation defines; Recovered is not an anomaly.
	Lost, Unexpected, Duplicated, Recovered int
	// Examples lists up to five keys of each anomaly, for the failure
	// message.
	Examples []string
}

// Valid reports whether nothing was lost, unexpected or duplicated.
func (r Report) Valid() bool { return r.Lost == 0 && r.Unexpected == 0 && r.Duplicated == 0 }

// String summarises the report on one line, followed by the examples.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent ok=%d failed=%d unknown=%d; rows=%d; lost=%d unexpected=%d duplicated=%d recovered=%d",
		r.OK, r.Failed, r.Unknown, r.Rows, r.Lost, r.Unexpected, r.Duplicated, r.Recovered)
	for _, e := range r.Examples {
		b.WriteString("\n  " + e)
	}
	return b.String()
}

func (r *Report) example(format string, args ...any) {
	if len(r.Examples) < 4*maxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// Check compares the log with every row of the readings table that db's
// search_path resolves.
func (l *Log) Check(ctx context.Context, db Querier) (Report, error) {
	rows, err := db.Query(ctx, "SELECT station, sensor, ts, value FROM readings")
	if err != nil {
		return Report{}, fmt.Errorf("checker: read readings: %w", err)
	}
	stored := make(map[Key][]float64)
	var r Report
	for rows.Next() {
		var k Key
		var v float64
		if err := rows.Scan(&k.Station, &k.Sensor, &k.Time, &v); err != nil {
			rows.Close()
			return Report{}, fmt.Errorf("checker: read readings: %w", err)
		}
		k.Time = k.Time.UTC()
		stored[k] = append(stored[k], v)
		r.Rows++
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("checker: read readings: %w", err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	for k, op := range l.ops {
		values := stored[k]
		switch op.outcome {
		case OK:
			r.OK++
			if len(values) == 0 {
				r.Lost++
				r.example("lost: %s", k)
			}
		case Failed:
			r.Failed++
			if len(values) > 0 {
				r.Unexpected++
				r.example("unexpected: %s was refused by Redis but stored", k)
			}
		case Unknown:
			r.Unknown++
			if len(values) > 0 {
				r.Recovered++
			}
		}
		for _, v := range values {
			if v != op.value {
				r.Unexpected++
				r.example("unexpected: %s stored as %v, sent as %v", k, v, op.value)
			}
		}
	}
	for k, values := range stored {
		if len(values) > 1 {
			r.Duplicated++
			r.example("duplicated: %s has %d rows", k, len(values))
		}
		if _, sent := l.ops[k]; !sent {
			r.Unexpected++
			r.example("unexpected: %s was never sent", k)
		}
	}
	return r, nil
}
