package main

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/checker"
	"github.com/sensorhub/sensorhub/internal/testserver"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// newPostgresFaultEnv is a fault env whose service stores into a
// PostgreSQL cluster of the test's own, which the test may stop.
func newPostgresFaultEnv(t *testing.T) (*testEnv, *testserver.Postgres) {
	t.Helper()
	srv := testserver.StartPostgres(t)
	e := newFaultEnv(t)
	e.db = srv.New(t)
	e.vars["DATABASE_URL"] = e.db.URL
	return e, srv
}

// sinkCounts is what /metrics says about failed writes and their handling.
type sinkCounts struct {
	transient, permanent, retries, poisoned float64
}

// scrapeSinkCounts scrapes e's /metrics. It needs Redis but not
// PostgreSQL, so it may be called during a database outage.
func scrapeSinkCounts(t *testing.T, e *testEnv) sinkCounts {
	t.Helper()
	_, samples := e.scrapeMetrics(t)
	c := sinkCounts{
		transient: samples[`sensorhub_sink_errors_total{kind="transient"}`],
		permanent: samples[`sensorhub_sink_errors_total{kind="permanent"}`],
		retries:   samples["sensorhub_retries_total"],
	}
	for name, v := range samples {
		if strings.HasPrefix(name, "sensorhub_messages_poisoned_total") {
			c.poisoned += v
		}
	}
	return c
}

// TestFaultPostgresRestart restarts PostgreSQL under steady load, first
// with pg_ctl -m immediate (a crash: no checkpoint, WAL replay on start),
// then with -m fast. Each outage lasts a few seconds: /healthcheck must say
// 503 with postgres down throughout it and 200 after, the service must keep
// running, each restart's failed writes must be counted as transient and
// retried, nothing may be poisoned and nothing lost.
func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	e, srv := newPostgresFaultEnv(t)
	proc := e.start(t, "run")
	e.waitHealthy(t)

	const hold = 3 * time.Second // how long PostgreSQL stays down
	log := checker.NewLog()
	// 15 s at 2 ms, longer than both restarts: the load is steady
	// throughout, which is checked below.
	n := 7_500 * soak(t)
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "pgrestart", Interval: 2 * time.Millisecond}
	done := produce(t, p, n)
	stored := 0
	for _, mode := range []string{"immediate", "fast"} {
		poll.Until(t, 30*time.Second, "readings stored before the restart", func() bool { return e.rows(t, "") > stored })
		before := scrapeSinkCounts(t, e)
		stopped := time.Now()
		if err := srv.Stop(mode); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, "/healthcheck 503 with postgres down", func() bool {
			code, state := e.component("postgres")
			return code == http.StatusServiceUnavailable && state == "down"
		})
		down := time.Since(stopped)
		// Writes fail and are retried meanwhile; every look must find
		// the service running and reporting the outage.
		looks := 0
		for end := time.Now().Add(hold); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			proc.alive(t)
			if code, state := e.component("postgres"); code != http.StatusServiceUnavailable || state != "down" {
				t.Fatalf("%s restart: /healthcheck %d with postgres %q while PostgreSQL is down", mode, code, state)
			}
			looks++
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		e.db.Pool.Reset() // the test's own connections died with the server
		started := time.Now()
		poll.Until(t, 15*time.Second, "/healthcheck 200 after postgres is back", func() bool {
			code, state := e.component("postgres")
			return code == http.StatusOK && state == "ok"
		})
		up := time.Since(started)
		stored = e.rows(t, "")
		if p.Sent() >= n {
			t.Fatalf("%s restart: the producer finished before PostgreSQL was back; the load was not steady", mode)
		}
		after := scrapeSinkCounts(t, e)
		t.Logf("%s restart: /healthcheck 503 %s after the stop (%d looks in %s, all 503), 200 %s after the start; %v transient sink errors, %v in-process retries",
			mode, down.Round(time.Millisecond), looks, hold, up.Round(time.Millisecond), after.transient-before.transient, after.retries-before.retries)
		if after.transient == before.transient || after.retries == before.retries {
			t.Errorf("%s restart: %v transient sink errors and %v retries counted; the failed writes must be counted as transient and retried",
				mode, after.transient-before.transient, after.retries-before.retries)
		}
	}
	done()
	verify(t, e, log, 60*time.Second)

	c := scrapeSinkCounts(t, e)
	t.Logf("in all: %v transient and %v permanent sink errors, %v in-process retries, %v poisoned", c.transient, c.permanent, c.retries, c.poisoned)
	if c.permanent != 0 || c.poisoned != 0 {
		t.Errorf("%v permanent sink errors and %v messages poisoned; an outage is transient and must poison nothing", c.permanent, c.poisoned)
	}
	if strings.Contains(proc.logs.String(), "sensorhub: message poisoned") {
		t.Errorf("the service logged a poisoned message:\n%s", proc.logs)
	}
	proc.alive(t)
}

// TestFaultPostgresDown60s keeps PostgreSQL down for a minute while
// readings arrive. The service must stay up, with its goroutines and memory
// bounded by the in-flight limit however long the backlog grows, leave the
// backlog in Redis, poison nothing, and drain it all once PostgreSQL is
// back.
func TestFaultPostgresDown60s(t *testing.T) {
	t.Parallel()
	e, srv := newPostgresFaultEnv(t)
	proc := e.start(t, "run")
	e.waitHealthy(t)

	// Warm up with the service at work, so that the baseline holds the
	// pools, buffers and batch sizes of a steady state.
	log := checker.NewLog()
	warm := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "warmup", Interval: 200 * time.Microsecond}
	produce(t, warm, 5_000)()
	poll.Until(t, 30*time.Second, "the warm-up stored", func() bool { return e.rows(t, "") == 5_000 })
	baseline, _ := proc.memory(t)
	_, samples := e.scrapeMetrics(t)
	idleGoroutines := samples["go_goroutines"]

	if err := srv.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	outage := time.Duration(soak(t)) * time.Minute
	const rate = 500 // readings per second: 30,000 backlog in a minute
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "pgdown", Interval: time.Second / rate}
	sent := int(outage.Seconds()) * rate
	done := produce(t, p, sent)
	// backlog returns the entries not acked: held by the service
	// (pending) and not yet delivered (lag).
	backlog := func() (pending, lag int64) {
		groups, err := e.redis.XInfoGroups(t.Context(), e.stream).Result()
		if err != nil || len(groups) != 1 {
			t.Fatalf("XINFO GROUPS: %v %v", groups, err)
		}
		return groups[0].Pending, groups[0].Lag
	}
	// Sample RSS each second; the in-flight limit is reached within
	// seconds, so from a third of the outage on memory must stay flat
	// however long the backlog grows.
	var peak, atThird, backlogAtThird int64
	start := time.Now()
	for time.Since(start) < outage {
		time.Sleep(time.Second)
		proc.alive(t)
		rss, _ := proc.memory(t)
		peak = max(peak, rss)
		if atThird == 0 && time.Since(start) >= outage/3 {
			atThird = peak
			pending, lag := backlog()
			backlogAtThird = pending + lag
		}
	}
	done()
	_, hwm := proc.memory(t)
	if code, state := e.component("postgres"); code != http.StatusServiceUnavailable || state != "down" {
		t.Errorf("/healthcheck %d with postgres %q after %s of PostgreSQL down, want 503 and down", code, state, outage)
	}

	// The backlog is in Redis: at most the in-flight limit is in the
	// service's hands, the rest not even delivered, and nothing is acked
	// while nothing can be stored.
	inHand, undelivered := backlog()
	_, samples = e.scrapeMetrics(t)
	goroutines := samples["go_goroutines"]
	t.Logf("after %s down: %d sent, %d pending (in the service's hands), %d not yet delivered (%d at a third); %v goroutines (%v before)",
		outage, p.Sent(), inHand, undelivered, backlogAtThird, goroutines, idleGoroutines)
	if inHand > int64(redis.DefaultBundleMaxInFlight) {
		t.Errorf("%d entries pending, more than the in-flight limit %d", inHand, redis.DefaultBundleMaxInFlight)
	}
	if ok := int64(log.Count(checker.OK)) - 5_000; inHand+undelivered != ok {
		t.Errorf("backlog of %d entries in Redis, want all %d sent during the outage", inHand+undelivered, ok)
	}
	if inHand+undelivered <= backlogAtThird {
		t.Errorf("backlog %d at the end of the outage, %d at a third: it must grow in Redis", inHand+undelivered, backlogAtThird)
	}
	if lag, pending := samples["sensorhub_consumer_lag"], samples["sensorhub_pending_entries"]; lag != float64(undelivered) || pending != float64(inHand) {
		t.Errorf("/metrics: consumer lag %v and %v pending, XINFO GROUPS says %d and %d", lag, pending, undelivered, inHand)
	}
	// Each bundle in flight holds two goroutines, the router's handler and
	// the subscriber's wait for it, and at most twice as many bundles as
	// full reads fill the in-flight limit are out; that, not the backlog
	// nor the trickle of small reads, must bound them.
	bundles := 2 * redis.DefaultBundleMaxInFlight / redis.DefaultBundleBatchSize
	if limit := idleGoroutines + float64(2*bundles) + 64; goroutines > limit {
		t.Errorf("%v goroutines during the outage, %v before: more than two per bundle in flight (%d)", goroutines, idleGoroutines, bundles)
	}

	// Memory: what is in flight costs the goroutines' stacks, its
	// entries, messages and batches, and the collector's headroom over
	// those at GOGC 200. It may not grow with the backlog once the limit is reached (a
	// service that buffered the backlog would add tens of MiB a minute
	// here), and the total stays under the 64 MiB the README promises.
	const growth, ceiling = 4 << 20, 64 << 20
	t.Logf("RSS %.1f MiB before the outage, %.1f MiB peak by a third of it, %.1f MiB peak in all (VmHWM %.1f MiB)",
		mib(baseline), mib(atThird), mib(peak), mib(hwm))
	if peak > atThird+growth {
		t.Errorf("RSS peaked at %.1f MiB, %.1f MiB at a third of the outage: it grows with the backlog", mib(peak), mib(atThird))
	}
	if hwm > ceiling {
		t.Errorf("RSS peaked at %.1f MiB (VmHWM), over %d MiB", mib(hwm), ceiling>>20)
	}
	if n := len(e.poisoned(t)); n != 0 {
		t.Fatalf("%d readings poisoned during the outage", n)
	}
	if c := scrapeSinkCounts(t, e); c.poisoned != 0 || c.permanent != 0 {
		t.Fatalf("during the outage: %v poisoned, %v permanent sink errors", c.poisoned, c.permanent)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	e.db.Pool.Reset() // the test's own connections died with the server
	restarted := time.Now()
	verify(t, e, log, 2*time.Minute)
	drain := time.Since(restarted)
	e.waitHealthy(t)
	proc.alive(t)
	c := scrapeSinkCounts(t, e)
	t.Logf("drained %d readings in %s after PostgreSQL came back; %v transient sink errors, %v in-process retries",
		inHand+undelivered, drain.Round(time.Millisecond), c.transient, c.retries)
}

// TestFaultPostgresDownRestarts restarts the service 15 times, by SIGTERM,
// while PostgreSQL is down and every reading waits in its hands: more
// restarts than the redelivery budget (10) allows deliveries. Each restart
// re-reads the pending entries, which raises Redis's delivery count, and
// each stop ends the in-process retries of the waiting messages; neither is
// a failure of the reading, so none may be poisoned, and once PostgreSQL is
// back every reading is stored exactly once.
func TestFaultPostgresDownRestarts(t *testing.T) {
	t.Parallel()
	e, srv := newPostgresFaultEnv(t)
	e.vars["SENSORHUB_SHUTDOWN_TIMEOUT"] = "5s"
	proc := e.start(t, "run")
	e.waitHealthy(t)
	// The readings are sent while the service is stopped, so that its
	// first read takes them all: while PostgreSQL is down it holds at most
	// 8 reads (bundles) in hand, and readings sent one by one to a running
	// service would leave most of them waiting in Redis, undelivered.
	proc.signal(t, syscall.SIGTERM)
	if code := proc.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("stop before the outage: exit code %d after SIGTERM, want 0\n%s", code, proc.logs)
	}
	if err := srv.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	const n, restarts = 200, 15
	log := checker.NewLog()
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "pgrestarts"}
	produce(t, p, n)()
	proc = e.start(t, "run")
	// deliveredAtLeast waits until every entry is pending with the
	// service, delivered at least times by Redis's count; it fails at once
	// when a reading is poisoned.
	deliveredAtLeast := func(restart int, times int64) {
		t.Helper()
		poll.Until(t, 30*time.Second, fmt.Sprintf("every reading in the service's hands, delivered %d times", times), func() bool {
			if poisoned := len(e.poisoned(t)); poisoned != 0 {
				t.Fatalf("after %d restarts during the outage, %d of %d readings poisoned", restart, poisoned, n)
			}
			pending, err := e.redis.XPendingExt(t.Context(), &goredis.XPendingExtArgs{
				Stream: e.stream, Group: redis.DefaultGroup, Start: "-", End: "+", Count: 2 * n,
			}).Result()
			if err != nil {
				t.Fatalf("XPENDING: %v", err)
			}
			for _, pe := range pending {
				if pe.RetryCount < times {
					return false
				}
			}
			return len(pending) == n
		})
	}
	deliveredAtLeast(0, 1)
	started := time.Now()
	for i := range restarts {
		proc.signal(t, syscall.SIGTERM)
		if code := proc.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("restart %d: exit code %d after SIGTERM, want 0\n%s", i+1, code, proc.logs)
		}
		proc = e.start(t, "run")
		// The successor re-reads its pending entries: Redis counts one
		// more delivery of each.
		deliveredAtLeast(i+1, int64(i+2))
	}
	t.Logf("%d restarts with PostgreSQL down in %s", restarts, time.Since(started).Round(time.Millisecond))

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	e.db.Pool.Reset() // the test's own connections died with the server
	report := verify(t, e, log, time.Minute)
	if report.OK != n {
		t.Errorf("%d readings acknowledged by Redis, want %d", report.OK, n)
	}
	proc.alive(t)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
