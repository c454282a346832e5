package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
)

// alarmRule is the rule of the alarm fault test.
const alarmRule = "temperature>30/28"

// alarmProducer sends temperatures of three stations, 100 ms apart in
// device time per station, that cross alarmRule often, and remembers them.
type alarmProducer struct {
	client goredis.UniversalClient
	stream string
	sent   []sensorhub.Reading
}

func (p *alarmProducer) run(ctx context.Context, n int, done chan<- error) {
	rng := rand.New(rand.NewPCG(9, 9))
	base := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	values := []float64{26, 27, 29, 31, 32}
	for i := range n {
		r := sensorhub.Reading{Station: fmt.Sprintf("a%d", i%3), Sensor: "temperature", Unit: "Cel",
			Time: base.Add(time.Duration(i/3) * 100 * time.Millisecond), Value: values[rng.IntN(len(values))]}
		payload := fmt.Sprintf(`{"sensor":"temperature","station":%q,"value":%v,"timestamp":%q}`, r.Station, r.Value, r.Time.Format(time.RFC3339Nano))
		if err := p.client.XAdd(ctx, &goredis.XAddArgs{Stream: p.stream, Values: []any{"payload", payload}}).Err(); err != nil {
			done <- err
			return
		}
		p.sent = append(p.sent, r)
		time.Sleep(2 * time.Millisecond)
	}
	done <- nil
}

// TestFaultKill9AlarmsAnnouncedOnce kills the service three times with
// SIGKILL (a batch transaction open, between commit and XACK, from outside)
// while temperatures cross a threshold rule. Every alarm transition is
// announced once: the events on the stream, deduped by UUID, are exactly
// those of one in-order pass of the rule over the stored readings (those
// announced late, redelivered after the window, left out), none is
// announced twice under two UUIDs, and per station they come in device-time
// order.
func TestFaultKill9AlarmsAnnouncedOnce(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t)
	eventsStream := withEvents(t, e)
	e.vars["SENSORHUB_THRESHOLDS"] = alarmRule
	e.vars["SENSORHUB_REORDER_WINDOW"] = "2s"

	const n = 6000
	prod := &alarmProducer{client: e.redis, stream: e.stream}
	produced := make(chan error, 1)
	go prod.run(t.Context(), n, produced)

	faults := []map[string]string{
		{"SENSORHUB_TEST_CRASH_BEFORE_COMMIT": "20"},
		{"SENSORHUB_TEST_CRASH_AFTER_COMMITS": "20"},
		nil, // from outside
	}
	for i, hook := range faults {
		e.vars["SENSORHUB_CONSUMER"] = fmt.Sprintf("alarms-%d", i)
		for k, v := range hook {
			e.vars[k] = v
		}
		victim := e.start(t, "run")
		if hook == nil {
			time.Sleep(time.Duration(1000+rand.IntN(1000)) * time.Millisecond)
			victim.signal(t, syscall.SIGKILL)
		}
		victim.wait(t, 60*time.Second)
		if !victim.killedBySIGKILL() {
			t.Fatalf("kill %d: the process ended with %v, want SIGKILL\n%s", i, victim.cmd.ProcessState, victim.logs)
		}
		for k := range hook {
			delete(e.vars, k)
		}
	}
	e.vars["SENSORHUB_CONSUMER"] = "alarms-last"
	e.start(t, "run")
	select {
	case err := <-produced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("producer still sending after 3 minutes")
	}

	poll.Until(t, 60*time.Second, "every reading stored and acked", func() bool {
		return e.rows(t, "") == n && e.pending(t, "") == 0
	})
	poll.Until(t, 30*time.Second, "every series processed to its end", func() bool {
		return e.rows(t, "") == n && countWhere(t, e, `SELECT count(*) FROM processor_cursors WHERE processed_until < max_ts`) == 0
	})
	transitions := checkCrossingsOnce(t, e, eventsStream, alarmRule, prod.sent)
	if transitions < 100 {
		t.Errorf("only %d transitions; the test must cross the threshold more often", transitions)
	}
}

// checkCrossingsOnce waits until every event committed to the outbox is on
// eventsStream, then checks that the threshold.crossed events of rule,
// deduped by UUID, are exactly those of one in-order pass of the rule over
// readings (those announced late left out, as they must not move alarm
// state), per station in device-time order: a transition announced twice
// under two UUIDs, or missed, or out of order, fails the test. It returns
// the number of transitions.
func checkCrossingsOnce(t *testing.T, e *testEnv, eventsStream, rule string, readings []sensorhub.Reading) int {
	t.Helper()
	committed, err := outbox.List(t.Context(), e.db.Pool, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "every committed event forwarded", func() bool {
		onStream := map[string]bool{}
		for _, ev := range e.events(t, eventsStream) {
			onStream[ev.UUID] = true
		}
		for _, ev := range committed {
			if !onStream[ev.UUID] {
				return false
			}
		}
		return true
	})

	events := e.events(t, eventsStream)
	byUUID, late := map[string]bool{}, map[string]bool{}
	var got, want []threshold.Crossed
	for _, ev := range events {
		if byUUID[ev.UUID] {
			continue
		}
		byUUID[ev.UUID] = true
		switch ev.Type {
		case sensorhub.EventReadingLate:
			var p sensorhub.ReadingLate
			if err := ev.Decode(&p); err != nil {
				t.Fatal(err)
			}
			late[p.Station+p.Time.Format(time.RFC3339Nano)] = true
		case sensorhub.EventThresholdCrossed:
			var c threshold.Crossed
			if err := ev.Decode(&c); err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
	}
	rules, err := threshold.Parse(rule)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.SortedStableFunc(slices.Values(readings), func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) })
	active := map[string]bool{}
	for _, r := range sorted {
		if late[r.Station+r.Time.UTC().Format(time.RFC3339Nano)] {
			continue
		}
		if next := rules[0].Next(active[r.Station], r.Value); next != active[r.Station] {
			active[r.Station] = next
			want = append(want, rules[0].Crossing(r, next))
		}
	}
	perStation := func(cs []threshold.Crossed) map[string][]string {
		out := map[string][]string{}
		for _, c := range cs {
			out[c.Station] = append(out[c.Station], fmt.Sprintf("%s %v %v", c.Time.Format(time.RFC3339Nano), c.Value, c.Active))
		}
		return out
	}
	g, w := perStation(got), perStation(want)
	for station := range w {
		if !slices.Equal(g[station], w[station]) {
			t.Errorf("station %s: %d transitions announced, want %d (in-order pass of the stored readings):\ngot  %v\nwant %v",
				station, len(g[station]), len(w[station]), g[station], w[station])
		}
	}
	for station := range g {
		if _, ok := w[station]; !ok {
			t.Errorf("station %s: %d transitions announced, want none", station, len(g[station]))
		}
	}
	t.Logf("%d readings, %d transitions announced once each, %d late readings, %d events on the stream", len(readings), len(got), len(late), len(events))
	return len(want)
}

func countWhere(t *testing.T, e *testEnv, sql string) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
