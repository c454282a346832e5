package main

// The fault suite (README: Guarantees). Each scenario runs the real binary,
// sends readings through a checker.Producer while it faults a process or a
// service, and then proves with checker.Log.Check that every reading Redis
// acknowledged is stored exactly once. Scenarios that fault Redis or
// PostgreSQL start their own servers; the shared ones are never restarted.
//
// make test runs them at scale 1; make test-faults-soak runs them at
// SENSORHUB_SOAK times the readings.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/checker"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// faultClaimIdle is SENSORHUB_CLAIM_IDLE in the fault tests: entries a dead
// consumer held are claimed by a live one after this long.
const faultClaimIdle = 2 * time.Second

// soak returns the factor by which the fault scenarios multiply their
// readings: SENSORHUB_SOAK, default 1.
func soak(t *testing.T) int {
	t.Helper()
	v := os.Getenv("SENSORHUB_SOAK")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SENSORHUB_SOAK=%q: want a whole number of 1 or more", v)
	}
	return n
}

// newFaultEnv is a testEnv whose service claims a dead consumer's entries
// after faultClaimIdle.
func newFaultEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	e.vars["SENSORHUB_CLAIM_IDLE"] = faultClaimIdle.String()
	return e
}

// produce runs p.Send(n) in the background and returns a function that
// waits for it to finish.
func produce(t *testing.T, p *checker.Producer, n int) (wait func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Send(t.Context(), n) }()
	return func() {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("producer: %v", err)
			}
		case <-time.After(5 * time.Minute):
			t.Fatalf("producer: %d of %d readings sent after 5 minutes", p.Sent(), n)
		}
	}
}

// verify waits up to within for the service to store every reading that log
// holds as acknowledged and to ack every entry, then checks the history: it
// fails the test on any lost, unexpected or duplicated reading, on entries
// left pending, and on anything poisoned.
func verify(t *testing.T, e *testEnv, log *checker.Log, within time.Duration) checker.Report {
	t.Helper()
	var report checker.Report
	deadline := time.Now().Add(within)
	for {
		var err error
		report, err = log.Check(t.Context(), e.db.Pool)
		if err != nil {
			t.Fatal(err)
		}
		pending := e.pending(t, "")
		if report.Lost == 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled within %s: %d pending; %s", within, pending, report)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !report.Valid() {
		t.Fatalf("history check failed: %s", report)
	}
	if n := len(e.poisoned(t)); n != 0 {
		t.Errorf("%d readings poisoned; a fault must never poison a valid reading", n)
	}
	t.Logf("history check: %s", report)
	return report
}

// TestFaultKill9 kills the service with SIGKILL three times while 10,000
// readings arrive: once while a batch transaction is open, once between a
// commit and the XACK of its entries, once from outside at a random moment.
// Each successor runs as a new consumer (a recreated container has a new
// hostname), so the dead consumer's entries come back only through
// XAUTOCLAIM: once the successor is healthy, within the idle time plus the
// claim interval (a third of the idle time here), with 5 s to spare for a
// machine busy with the rest of the test run. The bound used to run from
// the kill and so held the successor's start-up too, which under the
// parallel load of make test took seconds of its 2 s slack.
func TestFaultKill9(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t)
	n := 10_000 * soak(t)
	log := checker.NewLog()
	// 10,000 readings take about 20 s, long enough for three kills and
	// recoveries while the producer sends.
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "kill9", Interval: 2 * time.Millisecond}
	done := produce(t, p, n)

	recoveryBound := faultClaimIdle + faultClaimIdle/3 + 5*time.Second
	faults := []struct {
		name string
		hook map[string]string // fault hook the process fires itself
	}{
		{"while a batch transaction is open", map[string]string{"SENSORHUB_TEST_CRASH_BEFORE_COMMIT": "4"}},
		{"between commit and XACK", map[string]string{"SENSORHUB_TEST_CRASH_AFTER_COMMITS": "4"}},
		{"from outside, at a random moment", nil},
	}
	for i, f := range faults {
		consumer := fmt.Sprintf("kill9-%d", i)
		e.vars["SENSORHUB_CONSUMER"] = consumer
		for k, v := range f.hook {
			e.vars[k] = v
		}
		// Let readings pile up, so that the victim has a backlog in hand
		// when it dies.
		before := p.Sent()
		poll.Until(t, 30*time.Second, "the producer sends on", func() bool { return p.Sent() >= before+500 })
		victim := e.start(t, "run")
		if f.hook == nil {
			time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
			victim.signal(t, syscall.SIGKILL)
		}
		victim.wait(t, 60*time.Second)
		if !victim.killedBySIGKILL() {
			t.Fatalf("kill %s: the process ended with %v, want SIGKILL\n%s", f.name, victim.cmd.ProcessState, victim.logs)
		}
		for k := range f.hook {
			delete(e.vars, k)
		}
		killed := time.Now()
		held := e.pending(t, consumer)

		// The successor claims what the victim held.
		e.vars["SENSORHUB_CONSUMER"] = fmt.Sprintf("kill9-%d-successor", i)
		successor := e.start(t, "run")
		e.waitHealthy(t)
		ready := time.Now()
		poll.Until(t, 60*time.Second, "the victim's entries are claimed and acked", func() bool {
			return e.pending(t, consumer) == 0
		})
		recovery := time.Since(ready)
		t.Logf("kill %s: %d entries held, recovered %s after the kill, %s after the successor was healthy (bound %s)",
			f.name, held, time.Since(killed).Round(time.Millisecond), recovery.Round(time.Millisecond), recoveryBound)
		if held > 0 && recovery > recoveryBound {
			t.Errorf("kill %s: recovery took %s after the successor was healthy, want at most claim idle + claim interval + 5 s = %s",
				f.name, recovery, recoveryBound)
		}
		successor.signal(t, syscall.SIGTERM)
		if code := successor.wait(t, 60*time.Second); code != 0 {
			t.Fatalf("successor exited %d after SIGTERM\n%s", code, successor.logs)
		}
	}

	e.vars["SENSORHUB_CONSUMER"] = "kill9-last"
	e.start(t, "run")
	done()
	verify(t, e, log, 60*time.Second)
}

// TestFaultSIGTERMUnderLoad stops the service with SIGTERM while readings
// arrive every millisecond: it must exit 0 within its shutdown timeout, and
// every entry it acked must be stored. A restart then stores the rest.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t)
	const shutdownTimeout = 10 * time.Second
	e.vars["SENSORHUB_SHUTDOWN_TIMEOUT"] = shutdownTimeout.String()
	log := checker.NewLog()
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "sigterm", Interval: time.Millisecond}
	done := produce(t, p, 5_000*soak(t))

	proc := e.start(t, "run")
	e.waitHealthy(t)
	poll.Until(t, 30*time.Second, "readings stored under load", func() bool { return e.rows(t, "") >= 1_000 })
	proc.signal(t, syscall.SIGTERM)
	stopped := time.Now()
	// The HTTP server and the rest of fx stop after the hub; 5 s covers them.
	if code := proc.wait(t, shutdownTimeout+5*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, proc.logs)
	}
	t.Logf("exited %s after SIGTERM", time.Since(stopped).Round(time.Millisecond))

	// Acked = delivered to the group and no longer pending; each must be a
	// row.
	groups, err := e.redis.XInfoGroups(t.Context(), e.stream).Result()
	if err != nil || len(groups) != 1 {
		t.Fatalf("XINFO GROUPS: %v %v", groups, err)
	}
	delivered, err := e.redis.XRange(t.Context(), e.stream, "-", groups[0].LastDeliveredID).Result()
	if err != nil {
		t.Fatal(err)
	}
	pendingIDs, err := e.redis.XPendingExt(t.Context(), &goredis.XPendingExtArgs{
		Stream: e.stream, Group: redis.DefaultGroup, Start: "-", End: "+", Count: 1 << 20,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	stillPending := make(map[string]bool, len(pendingIDs))
	for _, pe := range pendingIDs {
		stillPending[pe.ID] = true
	}
	acked := 0
	for _, entry := range delivered {
		if stillPending[entry.ID] {
			continue
		}
		acked++
		var r struct{ Station, Timestamp string }
		if err := json.Unmarshal([]byte(entry.Values["payload"].(string)), &r); err != nil {
			t.Fatal(err)
		}
		if e.rows(t, "WHERE station = $1 AND ts = $2::timestamptz", r.Station, r.Timestamp) != 1 {
			t.Errorf("entry %s was acked but its reading %s@%s is not stored", entry.ID, r.Station, r.Timestamp)
		}
	}
	t.Logf("at exit: %d delivered, %d acked, %d pending", len(delivered), acked, len(pendingIDs))

	e.start(t, "run")
	done()
	verify(t, e, log, 60*time.Second)
}

// TestFaultSIGTERMDuringStartup stops the service while it is starting:
// that is a stop, not a failure, so it exits 0.
func TestFaultSIGTERMDuringStartup(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	proc := e.start(t, "run")
	// The first log line comes from the hub's start, inside fx's start-up.
	poll.Until(t, 10*time.Second, "the service logs", func() bool { return proc.logs.String() != "" })
	proc.signal(t, syscall.SIGTERM)
	if code := proc.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM during start-up, want 0\n%s", code, proc.logs)
	}
}
