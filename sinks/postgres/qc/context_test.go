package qc

import (
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestContextReadsBackToTheRunsStart checks the readings a walk reads
// before a late reading, in two series of ten hours of readings a minute
// apart, flat lines of 6 readings over 3 hours flagged: one whose value
// last changed 10 readings before the late one gets those 10 readings and
// the one before them, which breaks their run; one stuck at one value
// throughout gets the 3 hours and 15 minutes (period and gap) before the
// late reading's predecessor, which the flat line needs, and no more.
func TestContextReadsBackToTheRunsStart(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	t0 := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit)
		SELECT 'changing', 'temperature', $1::timestamptz + m * interval '1 minute', CASE WHEN m >= 590 THEN 20 ELSE m % 7 END, 'Cel'
		FROM generate_series(0, 599) AS m
		UNION ALL
		SELECT 'stuck', 'temperature', $1::timestamptz + m * interval '1 minute', 20, 'Cel'
		FROM generate_series(0, 599) AS m`, t0); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	l := limits{QC: sensorhub.QC{FlatLine: sensorhub.FlatLine{Count: 6, Period: 3 * time.Hour}}}
	late := t0.Add(600 * time.Minute)
	pred := late.Add(-time.Minute)
	for _, c := range []struct {
		station       string
		first         time.Time // of the readings read
		count         int
		firstRunValue float64
	}{
		{"changing", t0.Add(589 * time.Minute), 11, 589 % 7},
		{"stuck", pred.Add(-3*time.Hour - sensorhub.DefaultMaxGap), 196, 20},
	} {
		got, err := newWalk(ctx, tx, c.station, "temperature", l, time.Time{}).context(ctx, late)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.count || !got[0].Time.Equal(c.first) || got[0].Value != c.firstRunValue || !got[len(got)-1].Time.Equal(pred) {
			t.Errorf("%s: read %d readings, the first %v, the last %v; want %d from %s (value %v) to %s",
				c.station, len(got), got[0].point, got[len(got)-1].point, c.count, c.first, c.firstRunValue, pred)
		}
		for i := 1; i < len(got); i++ {
			if !got[i].Time.After(got[i-1].Time) {
				t.Fatalf("%s: readings out of device-time order at %d: %s after %s", c.station, i, got[i].Time, got[i-1].Time)
			}
		}
	}
}
