package qc_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

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
