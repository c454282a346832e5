package testserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// SentinelMaster is the name under which a RedisSentinel monitors its
// master.
const SentinelMaster = "sensorhub"

// RedisSentinel is a Sentinel-managed Redis of one test: a master, a
// replica of it and one sentinel (quorum 1) that fails the master over to
// the replica a second after it stops answering. Without persistence; its
// processes are killed when the test ends.
type RedisSentinel struct {
	Master, Replica, Sentinel *Redis
}

// StartRedisSentinel starts the master, the replica and the sentinel, and
// returns once the replica has synchronised and the sentinel knows it. It
// fails the test when redis-server is not installed, and skips it under go
// test -short.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	master := startRedis(t, Volatile)
	host, port, _ := net.SplitHostPort(master.Addr)
	replica := startRedis(t, Volatile, "--replicaof", host, port)

	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	lines := []string{
		fmt.Sprintf("sentinel monitor %s %s %s 1", SentinelMaster, host, port),
		fmt.Sprintf("sentinel down-after-milliseconds %s 1000", SentinelMaster),
		fmt.Sprintf("sentinel failover-timeout %s 10000", SentinelMaster),
	}
	// The sentinel rewrites its file as it learns the replicas.
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinelPort := freePort(t)
	args := []string{conf, "--sentinel", "--port", strconv.Itoa(sentinelPort), "--bind", "127.0.0.1",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}
	if err := os.WriteFile(filepath.Join(dir, argsFile), []byte(strings.Join(args, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sentinelPort)), Dir: dir}
	if err := sentinel.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sentinel.Kill(); err != nil {
			t.Error(err)
		}
	})
	s := &RedisSentinel{Master: master, Replica: replica, Sentinel: sentinel}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.ready(t.Context())
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("testserver: sentinel not ready after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether the replica has synchronised and the sentinel
// lists it.
func (s *RedisSentinel) ready(ctx context.Context) error {
	replica := goredis.NewClient(s.Replica.Options())
	defer func() { _ = replica.Close() }()
	role, err := replica.Do(ctx, "ROLE").Slice()
	if err != nil {
		return err
	}
	if len(role) < 4 || role[3] != "connected" {
		return fmt.Errorf("replica: ROLE %v", role)
	}
	sentinel := goredis.NewSentinelClient(s.Sentinel.Options())
	defer func() { _ = sentinel.Close() }()
	replicas, err := sentinel.Replicas(ctx, SentinelMaster).Result()
	if err != nil {
		return err
	}
	if len(replicas) == 0 {
		return fmt.Errorf("the sentinel knows no replica yet")
	}
	return nil
}

// MasterAddr returns the address the sentinel gives for the master now.
func (s *RedisSentinel) MasterAddr(ctx context.Context) (string, error) {
	sentinel := goredis.NewSentinelClient(s.Sentinel.Options())
	defer func() { _ = sentinel.Close() }()
	addr, err := sentinel.GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(addr[0], addr[1]), nil
}

// FailoverOptions returns options of a go-redis failover client of the
// monitored master.
func (s *RedisSentinel) FailoverOptions() *goredis.FailoverOptions {
	return &goredis.FailoverOptions{MasterName: SentinelMaster, SentinelAddrs: []string{s.Sentinel.Addr}}
}
