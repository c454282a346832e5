package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/checker"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// newPostgresFaultEnv is a fault env whose service stores into a
// PostgreSQL cluster of the test's own, which the test may stop.
func newPostgresFaultEnv(t *testing.T) (*testEnv, *postgrestest.Server) {
	t.Helper()
	srv := postgrestest.StartServer(t)
	e := newFaultEnv(t)
	e.db = srv.New(t)
	e.vars["DATABASE_URL"] = e.db.URL
	return e, srv
}

// TestFaultPostgresRestart restarts PostgreSQL under steady load, first
// with pg_ctl -m immediate (a crash: no checkpoint, WAL replay on start),
// then with -m fast. Each outage lasts a few seconds: /healthcheck must say
// 503 during it and 200 after, the failed writes must be retried as
// transient errors, nothing may be poisoned and nothing lost.
func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	e, srv := newPostgresFaultEnv(t)
	proc := e.start(t, "run")
	e.waitHealthy(t)

	log := checker.NewLog()
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "pgrestart", Interval: 2 * time.Millisecond}
	done := produce(t, p, 6_000*soak(t))
	for _, mode := range []string{"immediate", "fast"} {
		eventually(t, 30*time.Second, "readings stored before the restart", func() bool { return p.Sent() > 0 && e.rows(t, "") > 0 })
		stopped := time.Now()
		if err := srv.Stop(mode); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "/healthcheck 503 with postgres down", func() bool {
			code, state := e.component("postgres")
			return code == http.StatusServiceUnavailable && state == "down"
		})
		down := time.Since(stopped)
		time.Sleep(3 * time.Second) // writes fail and are retried meanwhile
		proc.alive(t)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		e.db.Pool.Reset() // the test's own connections died with the server
		started := time.Now()
		eventually(t, 15*time.Second, "/healthcheck 200 after postgres is back", func() bool {
			code, state := e.component("postgres")
			return code == http.StatusOK && state == "ok"
		})
		t.Logf("%s restart: /healthcheck 503 %s after the stop, 200 %s after the start",
			mode, down.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	}
	done()
	e.verify(t, log, 60*time.Second)

	_, samples := e.scrapeMetrics(t)
	transient, permanent := samples[`sensorhub_sink_errors_total{kind="transient"}`], samples[`sensorhub_sink_errors_total{kind="permanent"}`]
	t.Logf("sink errors: %v transient, %v permanent; %v in-process retries", transient, permanent, samples["sensorhub_retries_total"])
	if transient == 0 || permanent != 0 {
		t.Errorf("sink errors during the outages: %v transient, %v permanent; want some transient and no permanent", transient, permanent)
	}
}

// TestFaultPostgresDown60s keeps PostgreSQL down for a minute while
// readings arrive. The service must stay up with its memory bounded by the
// in-flight limit, leave the backlog in Redis, and drain it once PostgreSQL
// is back.
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
	eventually(t, 30*time.Second, "the warm-up stored", func() bool { return e.rows(t, "") == 5_000 })
	baseline, _ := proc.memory(t)

	if err := srv.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	outage := time.Duration(soak(t)) * time.Minute
	const rate = 500 // readings per second: 30,000 backlog in a minute
	p := &checker.Producer{Client: e.redis, Stream: e.stream, Log: log, Station: "pgdown", Interval: time.Second / rate}
	sent := int(outage.Seconds()) * rate
	done := produce(t, p, sent)
	// Sample RSS each second; the in-flight limit is reached within seconds,
	// so from a third of the outage on memory must stay flat however long
	// the backlog grows.
	var peak, atThird int64
	start := time.Now()
	for time.Since(start) < outage {
		time.Sleep(time.Second)
		proc.alive(t)
		rss, _ := proc.memory(t)
		peak = max(peak, rss)
		if atThird == 0 && time.Since(start) >= outage/3 {
			atThird = peak
		}
	}
	done()
	// The backlog is in Redis: at most the in-flight limit is in the
	// service's hands, the rest not even delivered.
	groups, err := e.redis.XInfoGroups(t.Context(), e.stream).Result()
	if err != nil || len(groups) != 1 {
		t.Fatalf("XINFO GROUPS: %v %v", groups, err)
	}
	inHand, undelivered := groups[0].Pending, groups[0].Lag
	t.Logf("after %s down: %d sent, %d pending (in the service's hands), %d not yet delivered; RSS %.1f MiB before, peak %.1f MiB by a third of the outage, %.1f MiB in all",
		outage, p.Sent(), inHand, undelivered, mib(baseline), mib(atThird), mib(peak))
	if inHand > int64(redis.DefaultMaxInFlight) {
		t.Errorf("%d entries pending, more than the in-flight limit %d", inHand, redis.DefaultMaxInFlight)
	}
	if inHand+undelivered < int64(sent)-int64(redis.DefaultMaxInFlight) {
		t.Errorf("backlog of %d entries in Redis, want nearly all %d sent during the outage", inHand+undelivered, sent)
	}
	// Bounded: no growth with the backlog after the in-flight limit filled
	// (a service that buffered the backlog would grow by tens of MiB a
	// minute here), and under the 64 MiB the README promises.
	const growth, ceiling = 4 << 20, 64 << 20
	if peak > atThird+growth {
		t.Errorf("RSS peaked at %.1f MiB, %.1f MiB at a third of the outage: it grows with the backlog", mib(peak), mib(atThird))
	}
	if peak > ceiling {
		t.Errorf("RSS peaked at %.1f MiB during the outage, over %d MiB", mib(peak), ceiling>>20)
	}
	if n := len(e.poisoned(t)); n != 0 {
		t.Fatalf("%d readings poisoned during the outage", n)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	e.db.Pool.Reset() // the test's own connections died with the server
	restarted := time.Now()
	e.verify(t, log, 2*time.Minute)
	t.Logf("drained %d readings in %s after PostgreSQL came back", sent, time.Since(restarted).Round(time.Millisecond))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
