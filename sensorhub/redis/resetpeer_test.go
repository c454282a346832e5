package redis_test

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// TestFaultResetPeerBacksOff puts a proxy that resets every connection
// between a subscriber and Redis while an entry is in hand, so that the
// reader, the claimer, keep-alive and the acker all fail at once, and
// counts the connections they open meanwhile. Each loop must back off as
// the package's backoff does (100 ms, doubling), one connection per
// attempt: go-redis's own command and dial retries would open several per
// attempt, and a periodic loop without backoff one per ClaimInterval.
func TestFaultResetPeerBacksOff(t *testing.T) {
	t.Parallel()
	const (
		claimInterval = 100 * time.Millisecond
		fault         = 3 * time.Second
		// Four loops backing off from 100 ms open about 6 connections
		// each in 3 s; measured: 24 in all. With go-redis's own retries
		// and periodic loops that do not back off: 103.
		maxConns = 60
	)
	proxy := newResetProxy(t, redistest.Options(t).Addr)
	opts := redistest.Options(t)
	opts.Addr = proxy.addr
	client := redistest.Client(t)
	stream := redistest.Name(t, "resetpeer")
	_, ch := subscribe(t, stream, redis.Config{Options: opts, MaxIdleTime: 3 * claimInterval, ClaimInterval: claimInterval})
	addEntries(t, client, stream, 2, "reading")
	first := receive(t, ch) // held: keep-alive refreshes it
	receive(t, ch).Ack()    // its XACK fails during the fault and is retried

	proxy.resetting.Store(true)
	before := proxy.accepted.Load()
	first.Ack()
	time.Sleep(fault)
	opened := proxy.accepted.Load() - before
	proxy.resetting.Store(false)
	t.Logf("%d connections opened in %s of reset connections", opened, fault)
	if opened > maxConns {
		t.Errorf("the subscriber opened %d connections in %s of reset connections, want at most %d: retrying without backoff",
			opened, fault, maxConns)
	}
}

// resetProxy forwards TCP connections to Redis, or, while resetting is
// set, resets each connection, new and open ones, as soon as the client
// sends on it.
type resetProxy struct {
	addr      string
	resetting atomic.Bool
	accepted  atomic.Int64
}

func newResetProxy(t *testing.T, upstream string) *resetProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			wg.Go(func() { p.serve(t, conn.(*net.TCPConn), upstream) })
		}
	})
	return p
}

func (p *resetProxy) serve(t *testing.T, conn *net.TCPConn, upstream string) {
	defer conn.Close()
	_ = conn.SetLinger(0) // Close sends RST
	if p.resetting.Load() {
		return
	}
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		t.Errorf("proxy: %v", err)
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(conn, up); conn.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		if err != nil || p.resetting.Load() {
			return
		}
		if _, err := up.Write(buf[:n]); err != nil {
			return
		}
	}
}
