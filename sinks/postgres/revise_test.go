package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// reviser adds 100 to the stored value of the reading before each reading
// it is handed, as quality control re-flags a neighbour, and revises it.
type reviser struct{}

func (reviser) Name() string { return "reviser" }

func (reviser) Process(ctx context.Context, tx pgx.Tx, s *postgres.Series) error {
	for _, r := range s.Readings {
		prev := sensorhub.Reading{Station: s.Station, Sensor: s.Sensor, Unit: r.Unit}
		err := tx.QueryRow(ctx, `UPDATE readings SET value = value + 100
WHERE (station, sensor, ts) = (SELECT station, sensor, ts FROM readings
  WHERE station = $1 AND sensor = $2 AND ts < $3 ORDER BY ts DESC LIMIT 1)
RETURNING ts, value`, s.Station, s.Sensor, r.Time).Scan(&prev.Time, &prev.Value)
		if err == pgx.ErrNoRows {
			continue
		}
		if err != nil {
			return err
		}
		s.Revise(prev, sensorhub.Reading{Station: "elsewhere", Sensor: s.Sensor, Time: prev.Time}) // another series: ignored
	}
	return nil
}

// revisedLog is the collector's state: what it was handed, as "released
// <second>" and "revised <second>=<value>".
type revisedLog struct{ Log []string }

// collector records the released and the revised readings it is handed.
type collector struct{}

func (collector) Name() string { return "collector" }

func (collector) Process(_ context.Context, _ pgx.Tx, s *postgres.Series) error {
	var st revisedLog
	if s.State != nil {
		if err := json.Unmarshal(s.State, &st); err != nil {
			return err
		}
	}
	for _, r := range s.Readings {
		st.Log = append(st.Log, fmt.Sprintf("released %d", int(r.Time.Sub(t0).Seconds())))
	}
	for _, r := range s.Revised {
		st.Log = append(st.Log, fmt.Sprintf("revised %d=%g", int(r.Time.Sub(t0).Seconds()), r.Value))
	}
	raw, err := json.Marshal(st)
	s.State = raw
	return err
}

func collected(t *testing.T, db *postgrestest.DB) []string {
	t.Helper()
	var st revisedLog
	err := db.Pool.QueryRow(t.Context(), `SELECT coalesce(state, '{}') FROM processor_cursors
WHERE processor = 'collector' AND station = 'roof' AND sensor = 'temperature'`).Scan(&st)
	if err != nil {
		t.Fatal(err)
	}
	return st.Log
}

func TestRevisedReadingsReachLaterProcessorsInWriteAndFlush(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newProcessingSink(t, db, 10*time.Second, reviser{}, collector{})
	for _, sec := range []int{0, 1, 2} {
		write(t, s, temp(sec, float64(sec)))
	}
	// Releases 0, 1 and 2: the reviser changes 0 and 1 before the collector
	// reads them, so they are released with their new values, not revised.
	write(t, s, temp(20, 20))
	want := []string{"released 0", "released 1", "released 2"}
	if got := collected(t, db); !slices.Equal(got, want) {
		t.Fatalf("collector handed %v, want %v", got, want)
	}
	// Releases 20: the reviser changes 2, which the collector processed.
	write(t, s, temp(40, 40))
	want = append(want, "released 20", "revised 2=102")
	if got := collected(t, db); !slices.Equal(got, want) {
		t.Fatalf("collector handed %v, want %v", got, want)
	}
	// The flusher releases 40: the reviser changes 20 in the same transaction.
	if n, err := s.Flush(t.Context(), 0); err != nil || n != 2 {
		t.Fatalf("Flush = %d, %v; want the series released to both processors", n, err)
	}
	want = append(want, "released 40", "revised 20=120")
	if got := collected(t, db); !slices.Equal(got, want) {
		t.Fatalf("collector handed %v, want %v", got, want)
	}
}

func TestRevisionsDoNotReachEarlierProcessors(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newProcessingSink(t, db, 10*time.Second, collector{}, reviser{})
	for _, sec := range []int{0, 20, 40} {
		write(t, s, temp(sec, float64(sec)))
	}
	if got, want := collected(t, db), []string{"released 0", "released 20"}; !slices.Equal(got, want) {
		t.Fatalf("collector handed %v, want %v: it runs before the reviser", got, want)
	}
}

// failer flags fail (4) every released reading below zero, as quality
// control's range test does on release, and revises it.
type failer struct{}

func (failer) Name() string { return "failer" }

func (failer) Process(ctx context.Context, tx pgx.Tx, s *postgres.Series) error {
	for _, r := range s.Readings {
		if r.Value >= 0 {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE readings SET qc_flag = 4 WHERE station = $1 AND sensor = $2 AND ts = $3`, s.Station, s.Sensor, r.Time); err != nil {
			return err
		}
		s.Revise(r)
	}
	return nil
}

func TestReadingsFlaggedFailOnReleaseReachLaterProcessorsRevised(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newProcessingSink(t, db, 10*time.Second, failer{}, collector{})
	for _, sec := range []int{0, 1, 2} {
		write(t, s, temp(sec, float64(1-sec)))
	}
	// Releases 0, 1 and 2 to both: the failer flags 2 as it is released,
	// so the collector does not get it released, but revised.
	write(t, s, temp(20, 20))
	want := []string{"released 0", "released 1", "revised 2=-1"}
	if got := collected(t, db); !slices.Equal(got, want) {
		t.Fatalf("collector handed %v, want %v", got, want)
	}
	// The flusher releases 40, which the failer flags: the collector gets
	// it revised, in the same transaction.
	write(t, s, temp(40, -40))
	want = append(want, "released 20")
	if n, err := s.Flush(t.Context(), 0); err != nil || n != 2 {
		t.Fatalf("Flush = %d, %v; want the series released to both processors", n, err)
	}
	want = append(want, "revised 40=-40")
	if got := collected(t, db); !slices.Equal(got, want) {
		t.Fatalf("collector handed %v, want %v", got, want)
	}
}
