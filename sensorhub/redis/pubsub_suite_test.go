package redis_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/subscriber"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// TestPubSub runs Watermill's universal Pub/Sub suite against our publisher
// and Subscriber, on a throwaway redis-server with AOF on, which the
// Reconnect scenario kills with SIGKILL and restarts twice. Under -short the
// suite runs in its own short mode, without the Reconnect scenario (the
// slowest part, and the only one that kills a server); without redis-server
// it fails, or skips under -short.
//
// The features are what the subscriber truly has:
//   - ConsumerGroups, Persistent: entries stay in the stream, and every
//     consumer group reads all of them.
//   - NewSubscriberReceivesOldMessages is false for the suite's constructor,
//     which, like the service, puts every subscriber into one group
//     (DefaultGroup): a new subscriber joins the group where it stands and
//     competes for new entries, so what the group already acked is not read
//     again. What is true is that a new consumer group is created at "0" and
//     reads the stream from the start; the NewConsumerGroup subtest runs the
//     suite's TestNewSubscriberReceivesOldMessages with a group per
//     subscriber to show it.
//   - GuaranteedOrder is false: entries are handled concurrently, up to
//     MaxInFlight at once, and nacked ones come back later.
//   - ExactlyOnceDelivery is false: delivery is at least once.
//
// Watermill's TestReconnect (v1.5.1) itself races: a goroutine appends to the
// slice of published messages that the test reads unsynchronised. Under
// -race the suite therefore gets no RestartServiceCommand, which skips it,
// and the Reconnect subtest runs the same scenario, ported without the race.
func TestPubSub(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	features := tests.Features{
		ConsumerGroups:                   true,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: false,
		GuaranteedOrder:                  false,
		ExactlyOnceDelivery:              false,
	}
	reconnect := !testing.Short()
	if reconnect && !raceEnabled {
		features.RestartServiceCommand = srv.RestartCommand(t)
	}
	groupPubSub := func(t *testing.T) (message.Publisher, message.Subscriber) {
		return srv.newPubSub(t, redis.DefaultGroup)
	}
	if reconnect && raceEnabled {
		// Sequential, as the suite runs its own TestReconnect: the restarts
		// must not hit the parallel tests.
		t.Run("Reconnect", func(t *testing.T) { testReconnect(t, srv, groupPubSub) })
	}
	tests.TestPubSub(t, features, groupPubSub, srv.newPubSub)

	t.Run("NewConsumerGroup", func(t *testing.T) {
		t.Parallel()
		features := features
		features.NewSubscriberReceivesOldMessages = true
		tests.TestNewSubscriberReceivesOldMessages(t,
			tests.TestContext{TestID: tests.NewTestID(), Features: features},
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return srv.newPubSub(t, "group_"+watermill.NewShortUUID())
			})
	})
}

// newPubSub is the suite's constructor: our publisher, with a client it
// closes, and the subscriber of a transport of its own, in group with a
// consumer name of its own; the transport closes when the test ends. Timings are short so that the suite runs in seconds: entries
// left pending by a closed subscriber are claimed after a second, and Close
// gives up on unacked messages (the suite leaves some in hand on purpose)
// after half a second. MaxDeliveries is raised because Watermill's contract
// is that a nacked message comes back however often it is nacked
// (TestContinueAfterErrors nacks hundreds of times); poisoning has its own
// test.
func (s redisServer) newPubSub(t *testing.T, group string) (message.Publisher, message.Subscriber) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pub, err := redis.NewPublisher(goredis.NewClient(s.Options()), logger)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := redis.New(redis.Config{
		Options:       s.Options(),
		Group:         group,
		Consumer:      watermill.NewShortUUID(),
		BlockTime:     100 * time.Millisecond,
		NackDelay:     10 * time.Millisecond,
		MaxNackDelay:  200 * time.Millisecond,
		ClaimInterval: 250 * time.Millisecond,
		MaxIdleTime:   time.Second,
		MaxDeliveries: 1000,
		CloseTimeout:  500 * time.Millisecond,
		Logger:        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return pub, tr.Subscriber()
}

// testReconnect is Watermill's TestReconnect with its data race removed:
// 100 publishers send 10,000 messages while the server is killed and
// restarted at a third and at half of them; every message must arrive.
func testReconnect(t *testing.T, srv redisServer, newPubSub tests.PubSubConstructor) {
	const messagesCount, publishersCount = 10_000, 100
	restartAt := map[int]bool{messagesCount / 3: true, messagesCount / 2: true}
	restart := srv.RestartCommand(t)

	pub, sub := newPubSub(t)
	topic := "topic-" + watermill.NewShortUUID()
	messages, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu        sync.Mutex
		published message.Messages
		restarts  sync.WaitGroup
		pubs      sync.WaitGroup
	)
	toPublish := make(chan struct{})
	go func() {
		defer close(toPublish)
		for i := range messagesCount {
			toPublish <- struct{}{}
			if restartAt[i] {
				restarts.Go(func() {
					if out, err := exec.Command(restart[0], restart[1:]...).CombinedOutput(); err != nil {
						t.Errorf("restart redis-server: %v\n%s", err, out)
					}
				})
			}
		}
	}()
	for range publishersCount {
		pubs.Go(func() {
			for range toPublish {
				msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
				for {
					if rand.IntN(10) == 0 {
						time.Sleep(500 * time.Millisecond)
					}
					if err := pub.Publish(topic, msg); err == nil {
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				mu.Lock()
				published = append(published, msg)
				mu.Unlock()
			}
		})
	}

	received, all := subscriber.BulkReadWithDeduplication(messages, messagesCount, 60*time.Second)
	pubs.Wait()
	restarts.Wait()
	if !all {
		t.Errorf("received %d of %d messages", len(received), messagesCount)
	}
	mu.Lock()
	tests.AssertAllMessagesReceived(t, published, received)
	mu.Unlock()
	if err := pub.Close(); err != nil {
		t.Error(err)
	}
	if err := sub.Close(); err != nil {
		t.Error(err)
	}
}
