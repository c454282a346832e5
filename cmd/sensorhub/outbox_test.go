package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// withEvents gives e an events stream of its own, which the outbox
// forwarder polls every 20 ms, and returns its name.
func withEvents(t *testing.T, e *testEnv) string {
	t.Helper()
	stream := redistest.Name(t, "events")
	e.vars["SENSORHUB_EVENTS_STREAM"] = stream
	e.vars["SENSORHUB_OUTBOX_POLL_INTERVAL"] = "20ms"
	return stream
}

// distinct drops repeats by UUID, failing when one UUID carries two
// different events.
func distinct(t *testing.T, events []sensorhub.Event) []sensorhub.Event {
	t.Helper()
	byUUID := map[string]sensorhub.Event{}
	var out []sensorhub.Event
	for _, ev := range events {
		if prev, ok := byUUID[ev.UUID]; ok {
			if string(prev.Payload) != string(ev.Payload) {
				t.Errorf("UUID %s carries two payloads", ev.UUID)
			}
			continue
		}
		byUUID[ev.UUID] = ev
		out = append(out, ev)
	}
	return out
}

// storedReadings returns the readings the readings.stored events list, and
// fails on one listed twice.
func storedReadings(t *testing.T, events []sensorhub.Event) map[string]bool {
	t.Helper()
	listed := map[string]bool{}
	for _, ev := range events {
		if ev.Type != sensorhub.EventReadingsStored {
			continue
		}
		var p sensorhub.ReadingsStored
		if err := ev.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Readings {
			k := fmt.Sprintf("%s/%s/%s", r.Station, r.Sensor, r.Time.Format(time.RFC3339))
			if listed[k] {
				t.Errorf("reading %s listed by two readings.stored events", k)
			}
			listed[k] = true
		}
	}
	return listed
}

func TestEveryCommittedBatchYieldsOneReadingsStoredEvent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	stream := withEvents(t, e)
	e.vars["SENSORHUB_THRESHOLDS"] = "temperature>30/28"
	e.start(t, "run")
	e.waitHealthy(t)

	const n = 600
	base := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	pipe := e.redis.Pipeline()
	for i := range n + n/3 { // the last third repeats readings already sent
		j := i % n
		payload := fmt.Sprintf(`{"sensor":"temperature","value":%d,"timestamp":%q,"station":"s%d"}`,
			20+j%15, base.Add(time.Duration(j)*time.Minute).Format(time.RFC3339), j%3)
		pipe.XAdd(t.Context(), &goredis.XAddArgs{Stream: e.stream, Values: []any{"payload", payload}})
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "all readings stored", func() bool { return e.rows(t, "") == n })
	poll.Until(t, 10*time.Second, "nothing left pending", func() bool {
		return e.redis.XPending(t.Context(), e.stream, "sensorhub").Val().Count == 0
	})

	// Every readings.stored event in the outbox, one per transaction that
	// stored something, reaches the stream; no reading is listed twice.
	committed, err := outbox.List(t.Context(), e.db.Pool, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	want, wantCrossings := 0, 0
	for _, ev := range committed {
		switch ev.Type {
		case sensorhub.EventReadingsStored:
			want++
		case sensorhub.EventThresholdCrossed:
			wantCrossings++
		}
	}
	var got []sensorhub.Event
	poll.Until(t, 30*time.Second, fmt.Sprintf("%d readings.stored and %d threshold.crossed events forwarded", want, wantCrossings), func() bool {
		got = distinct(t, e.events(t, stream))
		stored, crossed := 0, 0
		for _, ev := range got {
			switch ev.Type {
			case sensorhub.EventReadingsStored:
				stored++
			case sensorhub.EventThresholdCrossed:
				crossed++
			}
		}
		return stored == want && crossed == wantCrossings
	})
	if listed := storedReadings(t, got); len(listed) != n {
		t.Errorf("readings.stored events list %d readings, want each of the %d stored once", len(listed), n)
	}
	crossings := 0
	for _, ev := range got {
		if ev.Type == sensorhub.EventThresholdCrossed {
			var c threshold.Crossed
			if err := ev.Decode(&c); err != nil || c.Rule != "temperature>30/28" {
				t.Errorf("threshold event %s: %v", ev.Payload, err)
			}
			crossings++
		}
	}
	if crossings == 0 {
		t.Error("no threshold.crossed event for values up to 34 under rule temperature>30/28")
	}
	t.Logf("%d readings, %d transactions with new readings, %d crossings", n, want, crossings)
}

func TestKill9RightAfterCommitStillDeliversTheEvent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	stream := withEvents(t, e)
	e.vars["SENSORHUB_TEST_CRASH_AFTER_COMMITS"] = "1"
	p := e.start(t, "run")
	e.waitHealthy(t)
	e.xadd(t, legacyReading)
	if code := p.wait(t, 20*time.Second); code != -1 {
		t.Fatalf("exit code %d, want death by SIGKILL", code)
	}
	if n := e.rows(t, ""); n != 1 {
		t.Fatalf("%d rows after the crash, want the committed one", n)
	}
	before := len(e.events(t, stream))

	delete(e.vars, "SENSORHUB_TEST_CRASH_AFTER_COMMITS")
	e.start(t, "run")
	poll.Until(t, 20*time.Second, "the committed event is delivered after the restart", func() bool {
		return len(distinct(t, e.events(t, stream))) == 1
	})
	// The unacked message is redelivered, found a duplicate: no new event.
	poll.Until(t, 20*time.Second, "the message is acked after the restart", func() bool {
		return e.redis.XPending(t.Context(), e.stream, "sensorhub").Val().Count == 0
	})
	time.Sleep(300 * time.Millisecond)
	events := distinct(t, e.events(t, stream))
	if len(events) != 1 || events[0].Type != sensorhub.EventReadingsStored {
		t.Fatalf("events %+v, want one readings.stored", events)
	}
	var p1 sensorhub.ReadingsStored
	if err := events[0].Decode(&p1); err != nil || len(p1.Readings) != 1 || p1.Readings[0].Value != 14 {
		t.Errorf("payload %s", events[0].Payload)
	}
	t.Logf("%d events on the stream before the restart", before)
}

func TestBadThresholdsStopStartUpNamingEachEntry(t *testing.T) {
	t.Parallel()
	code, out := (&testEnv{vars: map[string]string{"SENSORHUB_THRESHOLDS": "temperature>30/28,temperature<x,rain<5/4"}}).cli(t, "run")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, out)
	}
	for _, want := range []string{"SENSORHUB_THRESHOLDS", `entry 2 "temperature<x"`, `entry 3 "rain<5/4"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}
