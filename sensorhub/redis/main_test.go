package redis_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == serverCommand {
		os.Exit(serverMain(os.Args[2:]))
	}
	// Every subscriber, publisher and client the tests make is closed, so
	// none of their goroutines may outlive the tests. The ones ignored are
	// Watermill's suite's own: TestReconnect never closes the channel its
	// collector ranges over, and the multiplier that fans several
	// subscribers into one channel (TestConcurrentSubscribe) keeps a
	// goroutine blocked on a message nobody reads after the test is done.
	// And go-redis probes a node it failed to dial once a second from a
	// goroutine of the node's pool, which sees the pool closed only after
	// its sleep: after a failover test killed a master, one outlives the
	// closed client by up to a second.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/pubsub/tests.TestReconnect.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func3"),
	)
}
