package qc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
	"github.com/sensorhub/sensorhub/sinks/postgres/qc"
)

// TestCalibrationOfAPastPeriodIsCheckedAgain: a calibration that turns
// one stored reading into a spike gets it flagged in its own transaction,
// announced with reading.flagged.
func TestCalibrationOfAPastPeriodIsCheckedAgain(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	p := newQC(t, types()...)
	sink := newSink(t, db, p)
	for m := range 7 {
		store(t, sink, temp("s", m, 10))
	}
	target := temp("s", 3, 10)
	wantFlag(t, db, target, 1)

	calibrations, err := calibration.New(calibration.Config{DB: db.Pool, Followers: []calibration.Follower{p}})
	if err != nil {
		t.Fatal(err)
	}
	_, applied, err := calibrations.Add(t.Context(), calibration.Calibration{Station: "s", Sensor: "temperature",
		From: target.Time, To: target.Time.Add(time.Second), Scale: 1, Offset: 20})
	if err != nil {
		t.Fatal(err)
	}
	if applied.Readings != 1 {
		t.Fatalf("calibration changed %d readings, want 1", applied.Readings)
	}
	flag, tests := flagOf(t, db, target)
	if flag != 4 || !slices.Contains(tests, "spike") {
		t.Fatalf("calibrated reading: flag %d %v, want 4 with spike", flag, tests)
	}

	events, err := outbox.List(t.Context(), db.Pool, 100)
	if err != nil {
		t.Fatal(err)
	}
	announced := false
	for _, e := range events {
		var f qc.Flagged
		if e.Type == qc.EventFlagged && json.Unmarshal(e.Payload, &f) == nil && f.Time.Equal(target.Time) && f.Flag == 4 && f.PreviousFlag == 1 {
			announced = true
		}
	}
	if !announced {
		t.Error("no reading.flagged event announces the calibrated reading's fail")
	}
}

// flagFollower is a Follower of one's own: it records what it is handed and
// announces it with an event.
type flagFollower struct{ handed []string }

func (r *flagFollower) FollowFlags(_ context.Context, _ pgx.Tx, f qc.Reflagged) ([]sensorhub.Event, error) {
	for _, rd := range f.Readings {
		r.handed = append(r.handed, fmt.Sprintf("%s/%s %s", f.Station, f.Sensor, rd.Time.Format("15:04")))
	}
	e, err := sensorhub.NewEvent("test.followed", 1, f)
	return []sensorhub.Event{e}, err
}

// TestFlagAndRebuildHandFailChangesToFollowers: Flag and Rebuild hand the
// readings that became or stopped being fail, and only those, to the
// followers, and write the followers' events in their transaction.
func TestFlagAndRebuildHandFailChangesToFollowers(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	f := &flagFollower{}
	p, err := qc.New(qc.Config{Types: types(), Refresh: time.Nanosecond, Followers: []qc.Follower{f}})
	if err != nil {
		t.Fatal(err)
	}
	sink := newSink(t, db, p)
	for m := range 7 {
		store(t, sink, temp("s", m, 10+float64(m)/10))
	}
	at := func(m int) time.Time { return temp("s", m, 0).Time }
	if _, _, err := p.Flag(t.Context(), db.Pool, qc.ManualFlag{Station: "s", Sensor: "temperature", From: at(2), To: at(4), Flag: 4}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Flag(t.Context(), db.Pool, qc.ManualFlag{Station: "s", Sensor: "temperature", From: at(5), To: at(6), Flag: 3}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"s/temperature 12:02", "s/temperature 12:03"}; !slices.Equal(f.handed, want) {
		t.Errorf("after a fail and a suspect flag, the follower was handed %q, want %q", f.handed, want)
	}
	if _, err := db.Pool.Exec(t.Context(), `DELETE FROM qc_manual_flags`); err != nil {
		t.Fatal(err)
	}
	f.handed = nil
	if _, err := p.Rebuild(t.Context(), db.Pool, qc.Scope{Station: "s"}, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"s/temperature 12:02", "s/temperature 12:03"}; !slices.Equal(f.handed, want) {
		t.Errorf("rebuild without the manual flags handed the follower %q, want %q", f.handed, want)
	}

	events, err := outbox.List(t.Context(), db.Pool, 1000)
	if err != nil {
		t.Fatal(err)
	}
	followed := 0
	for _, e := range events {
		if e.Type == "test.followed" {
			followed++
		}
	}
	if followed != 2 {
		t.Errorf("%d of the follower's events in the outbox, want 2 (one by Flag, one by Rebuild)", followed)
	}
}
