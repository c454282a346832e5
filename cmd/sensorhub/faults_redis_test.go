package main

// Redis faults of the fault suite (README: Guarantees): Redis killed and
// restarted with and without persistence, and the legacy Pub/Sub path with
// processor and bridge restarted apart. Each scenario that faults Redis
// starts a redis-server of its own; the shared one is never restarted.

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/checker"
	"github.com/sensorhub/sensorhub/internal/testserver"
)

// newRedisFaultEnv is a fault env whose service and test client use a
// redis-server of the test's own, which the test may kill.
func newRedisFaultEnv(t *testing.T, p testserver.Persistence) (*testEnv, *testserver.Redis) {
	t.Helper()
	srv := testserver.StartRedis(t, p)
	e := newFaultEnv(t)
	e.vars["REDIS_URL"] = srv.URL()
	e.redis = redisFaultClient(t, srv)
	return e, srv
}

// redisFaultClient returns a client of srv for the producer and the test's
// own queries. It gives up on a dead server within half a second and never
// retries, so that each reading's outcome is what one XADD learnt.
func redisFaultClient(t *testing.T, srv *testserver.Redis) *goredis.Client {
	t.Helper()
	opts := srv.Options()
	opts.DialTimeout = 500 * time.Millisecond
	opts.ReadTimeout = 500 * time.Millisecond
	opts.WriteTimeout = 500 * time.Millisecond
	opts.MaxRetries = -1
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// unstored returns the indices below n of p's readings that have no row in
// e's database.
func unstored(t *testing.T, e *testEnv, p *checker.Producer, n int) []int {
	t.Helper()
	rows, err := e.db.Pool.Query(t.Context(), "SELECT ts FROM readings WHERE station = $1", p.Station)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	start := p.Reading(0).Time
	stored := make([]bool, n)
	for rows.Next() {
		var ts time.Time
		if err := rows.Scan(&ts); err != nil {
			t.Fatal(err)
		}
		if i := int(ts.Sub(start) / time.Second); i >= 0 && i < n {
			stored[i] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var missing []int
	for i, ok := range stored {
		if !ok {
			missing = append(missing, i)
		}
	}
	return missing
}

// TestFaultRedisKill9AOF kills Redis, which runs with AOF and fsync on
// every write, with SIGKILL twice while readings arrive, and restarts it.
// Sends during the outage are unknown or failed, which is allowed; every
// reading Redis acknowledged must be stored exactly once, and the service
// must ride out both outages without exiting.
func TestFaultRedisKill9AOF(t *testing.T) {
	t.Parallel()
	e, srv := newRedisFaultEnv(t, testserver.AOF)
	log := checker.NewLog()
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "redis-aof", Interval: 2 * time.Millisecond}

	proc := e.start(t, "run")
	e.waitHealthy(t)
	done := produce(t, p, 6_000*soak(t))
	for i := range 2 {
		before := p.Sent()
		poll.Until(t, 30*time.Second, "the producer sends on", func() bool { return p.Sent() >= before+1_500 })
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		killed, sentAtKill := time.Now(), p.Sent()
		poll.Until(t, 10*time.Second, "GET /healthcheck reports redis down", func() bool {
			code, redis := e.component("redis")
			return code == http.StatusServiceUnavailable && redis == "down"
		})
		time.Sleep(500 * time.Millisecond) // an outage the producer notices
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		e.waitHealthy(t)
		t.Logf("outage %d: Redis down %s, %d sends during it; healthy %s after the restart",
			i+1, up.Sub(killed).Round(time.Millisecond), p.Sent()-sentAtKill, time.Since(up).Round(time.Millisecond))
		proc.alive(t)
	}
	done()
	// The bridge inside the service subscribed again too: a legacy
	// PUBLISH reaches it and is stored (verify checks that).
	legacy := &checker.Producer{Client: e.redis, Channel: e.stream, Log: log, Station: "redis-aof-legacy"}
	poll.Until(t, 10*time.Second, "a PUBLISH reaches the bridge again", func() bool {
		before := log.Count(checker.OK)
		if err := legacy.Send(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		return log.Count(checker.OK) > before
	})
	report := verify(t, e, log, 60*time.Second)
	proc.alive(t)
	if report.Unknown+report.Failed == 0 {
		t.Errorf("no send failed or went unanswered during two outages: the outages missed the producer (%s)", report)
	}
	// AOF kept the consumer group: nothing to recreate.
	_, samples := e.scrapeMetrics(t)
	if got := samples["sensorhub_redis_groups_recreated_total"]; got != 0 {
		t.Errorf("sensorhub_redis_groups_recreated_total = %v, want 0: the AOF holds the group", got)
	}
}

// TestFaultRedisRestartVolatile restarts a Redis that keeps nothing on disk
// while the service has a backlog (it is frozen with SIGSTOP, as a
// consumer that lags far behind). Everything in Redis vanishes, the
// consumer group too: the backlog is lost, which is the documented
// non-guarantee, and the loss shows in /metrics as a recreated group.
// /healthcheck must report Redis down during the outage and healthy within
// 10 s after it is back, and every reading Redis acknowledged after the
// restart must be stored.
func TestFaultRedisRestartVolatile(t *testing.T) {
	t.Parallel()
	e, srv := newRedisFaultEnv(t, testserver.Volatile)
	log := checker.NewLog()
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "redis-volatile", Interval: time.Millisecond}
	n := 1_000 * soak(t)

	proc := e.start(t, "run")
	e.waitHealthy(t)
	produce(t, p, n)()
	poll.Until(t, 20*time.Second, "the first readings are stored", func() bool { return e.rows(t, "") == n })

	// A backlog: acknowledged by Redis, not yet processed.
	proc.signal(t, syscall.SIGSTOP)
	produce(t, p, n/2)()
	backlog := unstored(t, e, p, p.Sent())
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	proc.signal(t, syscall.SIGCONT)
	poll.Until(t, 10*time.Second, "GET /healthcheck reports redis down", func() bool {
		code, redis := e.component("redis")
		return code == http.StatusServiceUnavailable && redis == "down"
	})
	reported := time.Since(down)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	boundary := p.Sent()
	done := produce(t, p, n) // at once: the group may not exist yet
	poll.Until(t, 10*time.Second, "GET /healthcheck is 200 again after Redis is back", func() bool {
		code, _ := e.health("/healthcheck")
		return code == http.StatusOK
	})
	recovered := time.Since(up)
	poll.Until(t, 10*time.Second, "the service stores again after the restart", func() bool {
		return e.rows(t, "WHERE ts >= $1", p.Reading(boundary).Time) > 0
	})
	storing := time.Since(up)
	done()
	poll.Until(t, 30*time.Second, "every reading sent after the restart is stored", func() bool {
		missing := unstored(t, e, p, p.Sent())
		return len(missing) == 0 || missing[len(missing)-1] < boundary
	})
	poll.Until(t, 10*time.Second, "nothing left pending", func() bool { return e.pending(t, "") == 0 })
	proc.alive(t)

	report, err := log.Check(t.Context(), e.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	lost := unstored(t, e, p, p.Sent())
	summary := report
	summary.Examples = nil // the lost ones are expected here
	t.Logf("backlog at the restart %d, lost %d; redis down reported after %s; after the restart healthy in %s, storing in %s; %s",
		len(backlog), len(lost), reported.Round(time.Millisecond), recovered.Round(time.Millisecond), storing.Round(time.Millisecond), summary)
	if report.OK != p.Sent() {
		t.Errorf("%d of %d sends acknowledged; Redis was up for every send", report.OK, p.Sent())
	}
	if report.Unexpected != 0 || report.Duplicated != 0 {
		t.Errorf("history check: %s", report)
	}
	if report.Lost != len(lost) || report.Lost > len(backlog) {
		t.Errorf("lost %d (checker) / %d (rows), want at most the %d readings unprocessed at the restart", report.Lost, len(lost), len(backlog))
	}
	for _, i := range lost {
		if _, ok := slices.BinarySearch(backlog, i); !ok {
			t.Errorf("reading %d is lost but was stored or sent after the restart", i)
			break
		}
	}
	if report.Lost == 0 {
		t.Errorf("nothing lost: the restart hit no backlog (%d readings unprocessed when Redis was killed)", len(backlog))
	}
	if n := len(e.poisoned(t)); n != 0 {
		t.Errorf("%d readings poisoned", n)
	}

	// The loss is visible in /metrics: the recreated group is the trace of
	// the entries that went with the old one.
	_, samples := e.scrapeMetrics(t)
	if got := samples["sensorhub_redis_groups_recreated_total"]; got != 1 {
		t.Errorf("sensorhub_redis_groups_recreated_total = %v, want 1", got)
	}
	if got, want := samples["sensorhub_readings_stored_total"], float64(report.Rows); got != want {
		t.Errorf("sensorhub_readings_stored_total = %v, want %v (the rows)", got, want)
	}
}

// bridgeCounts is what a bridge counted: received, appended, failed.
type bridgeCounts struct{ received, appended, failed float64 }

// stoppedBridgeCounts reads the counts that a bridge process logged when it
// stopped.
func stoppedBridgeCounts(t *testing.T, p *process) bridgeCounts {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg                        string
			Received, Appended, Failed float64
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "redis: bridge stopped" {
			return bridgeCounts{line.Received, line.Appended, line.Failed}
		}
	}
	t.Fatalf("the bridge logged no counts when it stopped\n%s", p.logs)
	return bridgeCounts{}
}

// TestFaultPubSub runs the legacy Pub/Sub bridge (sensorhub
// bridge) and the processor (sensorhub run, SENSORHUB_BRIDGE=false) as two
// processes, with a producer that publishes readings numbered in sequence.
// Restarting the processor, by SIGTERM and by SIGKILL, loses nothing: the
// bridge appends on meanwhile. Restarting the bridge loses the readings
// published while nobody was subscribed: exactly those the producer saw
// reach no subscriber, one run of them, at most the downtime's worth, and
// the bridge's counters account for every one that did.
func TestFaultPubSub(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t)
	e.vars["SENSORHUB_BRIDGE"] = "false"
	e.vars["SENSORHUB_CONSUMER"] = "pubsub-processor"
	// The bridge's environment keeps SENSORHUB_BRIDGE=false, which only
	// run heeds, and names a database nobody listens on: it needs none.
	b := e.withOwnPort(t)
	b.vars["DATABASE_URL"] = "postgres://sensorhub@127.0.0.1:1/none"
	const interval = 2 * time.Millisecond
	log := checker.NewLog()
	p := &checker.Producer{Client: e.redis, Channel: e.stream, Log: log, Station: "pubsub", Interval: interval}

	bridge := b.start(t, "bridge")
	b.waitHealthy(t)
	_, body := b.health("/healthcheck")
	if comps, _ := body["components"].(map[string]any); len(comps) != 1 || comps["redis"] == nil {
		t.Errorf("the bridge's /healthcheck = %v, want the redis component alone", body)
	}
	proc := e.start(t, "run")
	e.waitHealthy(t)

	// The processor restarts; the bridge stays.
	done := produce(t, p, 3_000*soak(t))
	for _, kill := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		before := p.Sent()
		poll.Until(t, 30*time.Second, "the producer sends on", func() bool { return p.Sent() >= before+800 })
		proc.signal(t, kill)
		code := proc.wait(t, 30*time.Second)
		if kill == syscall.SIGTERM && code != 0 {
			t.Fatalf("processor exited %d after SIGTERM\n%s", code, proc.logs)
		}
		if kill == syscall.SIGKILL && !proc.killedBySIGKILL() {
			t.Fatalf("processor ended with %v, want SIGKILL", proc.cmd.ProcessState)
		}
		proc = e.start(t, "run")
		e.waitHealthy(t)
	}
	done()
	report := verify(t, e, log, 30*time.Second)
	if report.Failed+report.Unknown != 0 {
		t.Errorf("with the bridge up, %d publishes reached no subscriber and %d went unanswered", report.Failed, report.Unknown)
	}

	// The bridge restarts.
	first := p.Sent()
	done = produce(t, p, 2_000*soak(t))
	poll.Until(t, 30*time.Second, "the producer sends on", func() bool { return p.Sent() >= first+800 })
	stopping := time.Now()
	bridge.signal(t, syscall.SIGTERM)
	if code := bridge.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("bridge exited %d after SIGTERM\n%s", code, bridge.logs)
	}
	old := stoppedBridgeCounts(t, bridge)
	time.Sleep(200 * time.Millisecond) // a downtime worth measuring
	bridge = b.start(t, "bridge")
	b.waitHealthy(t)
	downtime := time.Since(stopping)
	done()
	report = verify(t, e, log, 30*time.Second)

	missing := unstored(t, e, p, p.Sent())
	bound := int(downtime/interval) + 5
	t.Logf("bridge down for at most %s: %d publishes reached no subscriber (bound %d); %s",
		downtime.Round(time.Millisecond), report.Failed, bound, report)
	// verify proved that every acknowledged reading is stored and no
	// refused one; so the refused ones are exactly the rows missing.
	if report.Unknown != 0 || len(missing) != report.Failed {
		t.Errorf("%d readings not stored, %d publishes reached no subscriber, %d unanswered; want the first two equal and no unanswered",
			len(missing), report.Failed, report.Unknown)
	}
	if report.Failed == 0 || report.Failed > bound {
		t.Errorf("%d publishes reached no subscriber while the bridge was down for %s, want 1 to %d", report.Failed, downtime, bound)
	}
	if len(missing) > 0 && (missing[0] < first || missing[len(missing)-1]-missing[0]+1 != len(missing)) {
		t.Errorf("the readings not stored are not one run during the bridge's restart: %d from %d to %d (restart from %d)",
			len(missing), missing[0], missing[len(missing)-1], first)
	}

	// The two bridges account for every publish a subscriber received.
	_, samples := b.scrapeMetrics(t)
	now := bridgeCounts{samples["sensorhub_bridge_received_total"], samples["sensorhub_bridge_appended_total"], samples["sensorhub_bridge_failed_total"]}
	t.Logf("bridge counts: before the restart %+v, after %+v", old, now)
	if got, want := old.received+now.received, float64(report.OK); got != want {
		t.Errorf("the bridges received %v messages, the producer saw %v reach a subscriber", got, want)
	}
	if old.appended != old.received || now.appended != now.received || old.failed+now.failed != 0 {
		t.Errorf("bridge counts before the restart %+v, after %+v: want every received message appended, none failed", old, now)
	}
	proc.alive(t)
	bridge.alive(t)
}
