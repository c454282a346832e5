package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers/temperature"
	"github.com/sensorhub/sensorhub/internal/checker"
	"github.com/sensorhub/sensorhub/internal/testserver"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestFaultHandlerFailsTransientlyForever runs a hub on Redis and PostgreSQL
// whose handler of one sensor type fails with a transient error every time.
// Its reading must be attempted on the two schedules of the retry policy
// (in-process retries with doubling backoff, then redeliveries with doubling
// nack delay) and then poisoned once with redelivery_limit, while readings
// of other sensors flow on and the process stays nearly idle.
//
// It does not run in parallel: its CPU budget is measured on the whole test
// process.
func TestFaultHandlerFailsTransientlyForever(t *testing.T) {
	const (
		maxRetries    = 3 // in-process retries after the first attempt
		retryInterval = 20 * time.Millisecond
		nackDelay     = 300 * time.Millisecond
		maxNackDelay  = 1200 * time.Millisecond
		maxDeliveries = 4
		jitter        = 0.2 // the retry middleware's randomisation factor
	)
	client := redistest.Client(t)
	stream := redistest.Name(t, "failing")
	db := postgrestest.New(t)
	var (
		mu       sync.Mutex
		attempts []time.Time
	)
	errFlaky := errors.New("rain gauge bus busy")
	hub, _ := newStoringHub(t, db, redis.Config{
		Consumer:      "failing",
		NackDelay:     nackDelay,
		MaxNackDelay:  maxNackDelay,
		MaxDeliveries: maxDeliveries,
	}, sensorhub.Config{Stream: stream, MaxRetries: maxRetries, RetryInterval: retryInterval, MaxRetryBackoff: time.Second},
		temperature.Type(),
		sensorhub.SensorType{Name: "rain", Unit: "mm", Handle: func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) {
			mu.Lock()
			attempts = append(attempts, time.Now())
			mu.Unlock()
			return sensorhub.Batch{}, errFlaky
		}})
	startHub(t, hub)

	failingID, err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload",
		`{"sensor":"rain","value":1.5,"timestamp":"2024-12-01T12:00:00Z","station":"garden"}`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Temperature readings keep flowing meanwhile, each within a second.
	log := checker.NewLog()
	p := &checker.Producer{Client: client, Stream: stream, Log: log, Station: "roof", Interval: 5 * time.Millisecond}
	if err := p.Send(t.Context(), 200); err != nil {
		t.Fatal(err)
	}
	// From here to the poisoning only the failing reading is in hand: it
	// must wait in timers, not spin.
	cpuBefore, wallBefore := cpuTime(t), time.Now()
	poisoned := waitForPoisonWithin(t, client, stream, 30*time.Second)
	cpu, wall := cpuTime(t)-cpuBefore, time.Since(wallBefore)

	if poisoned.Values["entry_id"] != failingID || poisoned.Values["reason"] != redis.ReasonRedeliveryLimit {
		t.Errorf("poison entry = %v, want entry %s with reason %s", poisoned.Values, failingID, redis.ReasonRedeliveryLimit)
	}

	mu.Lock()
	got := append([]time.Time(nil), attempts...)
	mu.Unlock()
	perDelivery := maxRetries + 1
	if want := perDelivery * maxDeliveries; len(got) != want {
		t.Fatalf("%d attempts, want (1 + %d retries) × %d deliveries = %d", len(got), maxRetries, maxDeliveries, want)
	}
	// Within a delivery the gaps follow the retry backoff, doubling from
	// retryInterval with ±20 % jitter; the upper bound leaves room for
	// scheduling, not for a backoff that grows faster. Between deliveries
	// they are at least the nack delay, doubling up to its cap.
	nack := nackDelay
	for i := 1; i < len(got); i++ {
		gap := got[i].Sub(got[i-1])
		var least, most time.Duration
		if retry := i % perDelivery; retry == 0 {
			least, most = nack, 2*nack+time.Second
			nack = min(2*nack, maxNackDelay)
		} else {
			want := retryInterval << (retry - 1)
			least = time.Duration(float64(want) * (1 - jitter))
			most = 2*want + 200*time.Millisecond
		}
		if gap < least || gap > most {
			t.Errorf("attempt %d came %s after attempt %d, want %s to %s", i+1, gap, i, least, most)
		}
	}
	t.Logf("attempt gaps: %s", gaps(got))

	report, err := log.Check(t.Context(), db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Valid() || report.Rows != 200 {
		t.Errorf("other sensors while one fails: %s", report)
	}
	share := cpu.Seconds() / wall.Seconds()
	t.Logf("CPU %s over the last %s of retries (%.1f%% of a core)", cpu, wall.Round(time.Millisecond), 100*share)
	if wall < time.Second {
		t.Errorf("only %s of retries left after the other readings; the CPU measure needs a longer window", wall)
	}
	if share > 0.15 {
		t.Errorf("the process used %.0f%% of a core while one reading was retried, want under 15%%", 100*share)
	}
}

// newStoringHub returns a hub, not started, that reads its Stream through
// a subscriber of the test Redis configured by sub (with a short BlockTime)
// and stores into db, with the other fields of cfg as given.
func newStoringHub(t *testing.T, db *postgrestest.DB, sub redis.Config, cfg sensorhub.Config, types ...sensorhub.SensorType) (*sensorhub.Hub, *redis.Subscriber) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	sub.Stream = cfg.Stream
	sub.BlockTime = 100 * time.Millisecond
	sub.Logger = logger
	tr := newTransport(t, sub)
	subscriber := tr.Subscriber()
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Subscriber, cfg.Publisher, cfg.PoisonStream, cfg.Sink, cfg.Logger = subscriber, tr.PoisonPublisher(), tr.PoisonStream(), sink, logger
	hub, err := sensorhub.New(cfg, types...)
	if err != nil {
		t.Fatal(err)
	}
	return hub, subscriber
}

// startHub starts hub and stops it when the test ends.
func startHub(t *testing.T, hub *sensorhub.Hub) {
	t.Helper()
	if err := hub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Stop(context.Background()) })
}

// waitForPoisonWithin waits for the one entry of the stream's poison stream.
func waitForPoisonWithin(t *testing.T, client goredis.UniversalClient, stream string, timeout time.Duration) goredis.XMessage {
	t.Helper()
	poison := stream + sensorhub.PoisonSuffix
	poll.Until(t, timeout, "poison entry", func() bool { return client.XLen(t.Context(), poison).Val() > 0 })
	time.Sleep(100 * time.Millisecond) // a second entry would be here by now
	entries, err := client.XRange(t.Context(), poison, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d poison entries, want 1: %v", len(entries), entries)
	}
	return entries[0]
}

// cpuTime returns the user and system CPU time of the test process so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func gaps(ts []time.Time) string {
	s := ""
	for i := 1; i < len(ts); i++ {
		s += fmt.Sprintf(" %s", ts[i].Sub(ts[i-1]).Round(time.Millisecond))
	}
	return s
}

// TestFaultOutageOutlastsRedeliveryBudget keeps PostgreSQL down far longer
// than the in-process retries plus every redelivery the subscriber allows
// would last. A transient error of the sink is retried in process for as
// long as the outage lasts, so no reading is nacked, none spends its
// redelivery budget, and none is poisoned.
func TestFaultOutageOutlastsRedeliveryBudget(t *testing.T) {
	t.Parallel()
	srv := testserver.StartPostgres(t)
	db := srv.New(t)
	client := redistest.Client(t)
	stream := redistest.Name(t, "outage")
	// Without the exception, the budget is spent in about 0.2 s: 2 retries
	// of 10 ms and 20 ms per delivery, nacks of 50 ms, 2 deliveries.
	hub, sub := newStoringHub(t, db, redis.Config{
		Consumer:      "outage",
		NackDelay:     50 * time.Millisecond,
		MaxNackDelay:  50 * time.Millisecond,
		MaxDeliveries: 2,
	}, sensorhub.Config{Stream: stream, MaxRetries: 2, RetryInterval: 10 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond}, temperature.Type())
	startHub(t, hub)

	if err := srv.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	log := checker.NewLog()
	p := &checker.Producer{Client: client, Stream: stream, Log: log, Station: "outage"}
	if err := p.Send(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // fifteen times the budget
	if n := client.XLen(t.Context(), stream+sensorhub.PoisonSuffix).Val(); n != 0 {
		t.Fatalf("%d readings poisoned during the outage", n)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	db.Pool.Reset() // the test's own connections died with the server
	poll.Until(t, 10*time.Second, "every reading stored and acked", func() bool {
		report, err := log.Check(t.Context(), db.Pool)
		return err == nil && report.Rows == 100 && pendingCount(t, client, stream) == 0
	})
	report, err := log.Check(t.Context(), db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Valid() {
		t.Errorf("history check: %s", report)
	}
	if n := client.XLen(t.Context(), stream+sensorhub.PoisonSuffix).Val(); n != 0 {
		t.Errorf("%d readings poisoned", n)
	}
	if s := sub.Stats(); s.Nacked != 0 {
		t.Errorf("%d nacks during the outage, want none: the readings wait in process", s.Nacked)
	}
}
