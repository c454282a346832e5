package checker_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers/temperature"
	"github.com/sensorhub/sensorhub/internal/checker"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestCheckCountsEveryAnomaly stores rows by hand for a log that holds every
// outcome, so that each anomaly the checker knows occurs exactly once.
func TestCheckCountsEveryAnomaly(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	// Without the primary key the table can hold what must never happen.
	if _, err := db.Pool.Exec(ctx, "ALTER TABLE readings DROP CONSTRAINT readings_pkey"); err != nil {
		t.Fatal(err)
	}
	p := checker.Producer{Station: "chk"}
	log := checker.NewLog()
	store := func(r checker.Reading, value float64) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, "INSERT INTO readings (station, sensor, ts, value, unit) VALUES ($1, $2, $3, $4, 'Cel')",
			r.Station, r.Sensor, r.Time, value); err != nil {
			t.Fatal(err)
		}
	}
	stored, lost, refused, refusedStored, unknown, recovered, doubled, changed, stray :=
		p.Reading(0), p.Reading(1), p.Reading(2), p.Reading(3), p.Reading(4), p.Reading(5), p.Reading(6), p.Reading(7), p.Reading(8)
	for _, r := range []checker.Reading{stored, lost, doubled, changed} {
		log.Record(r, checker.OK)
	}
	log.Record(refused, checker.Failed)
	log.Record(refusedStored, checker.Failed)
	log.Record(unknown, checker.Unknown)
	log.Record(recovered, checker.Unknown)
	store(stored, stored.Value)
	store(refusedStored, refusedStored.Value)
	store(recovered, recovered.Value)
	store(doubled, doubled.Value)
	store(doubled, doubled.Value)
	store(changed, changed.Value+1)
	store(stray, stray.Value)

	report, err := log.Check(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	want := checker.Report{OK: 4, Failed: 2, Unknown: 2, Rows: 7, Lost: 1, Unexpected: 3, Duplicated: 1, Recovered: 1}
	got := report
	got.Examples = nil
	if got.String() != want.String() {
		t.Errorf("report:\n got %s\nwant %s", report, want)
	}
	if report.Valid() {
		t.Error("Valid() = true for a report with anomalies")
	}
	if len(report.Examples) != 5 {
		t.Errorf("%d examples, want one per anomaly (5):\n%s", len(report.Examples), report)
	}
}

// TestProducerAgainstRedis sends readings to a real Redis, checks that each
// payload is one the hub stores as the reading the log expects, and
// classifies a refused and an unanswered command.
func TestProducerAgainstRedis(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	stream := redistest.Name(t, "checker")
	log := checker.NewLog()
	p := checker.Producer{Client: client, Stream: stream, Log: log, Station: "chk", Interval: time.Millisecond}
	if err := p.Send(t.Context(), 20); err != nil {
		t.Fatal(err)
	}
	if p.Sent() != 20 || log.Count(checker.OK) != 20 {
		t.Fatalf("Sent() = %d, %d logged OK; want 20 and 20", p.Sent(), log.Count(checker.OK))
	}
	entries, err := client.XRange(t.Context(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 20 {
		t.Fatalf("%d entries in the stream, want 20", len(entries))
	}
	for i, e := range entries {
		got, err := sensorhubtest.Process(t, e.Values["payload"].(string), temperature.Type())
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := p.Reading(i)
		if len(got.Readings) != 1 || got.Readings[0].Station != want.Station || !got.Readings[0].Time.Equal(want.Time) || got.Readings[0].Value != want.Value {
			t.Errorf("entry %d stored as %+v, want %+v", i, got, want)
		}
	}

	// WRONGTYPE: the server refused the command.
	wrong := redistest.Name(t, "string")
	if err := client.Set(t.Context(), wrong, "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got := checker.Classify(client.XAdd(t.Context(), &goredis.XAddArgs{Stream: wrong, Values: []any{"a", "b"}}).Err()); got != checker.Failed {
		t.Errorf("WRONGTYPE reply classified %s, want failed", got)
	}
	// A deadline that passes before the answer: nobody knows.
	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if got := checker.Classify(client.Ping(ctx).Err()); got != checker.Unknown {
		t.Errorf("timed-out command classified %s, want unknown", got)
	}
	// Over Pub/Sub with nobody subscribed the reading went nowhere.
	pub := checker.Producer{Client: client, Channel: redistest.Name(t, "chan"), Log: checker.NewLog(), Station: "pub"}
	if err := pub.Send(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	if n := pub.Log.Count(checker.Failed); n != 3 {
		t.Errorf("%d of 3 unheard publishes logged failed", n)
	}
}
