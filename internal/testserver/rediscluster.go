package testserver

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// clusterNodeTimeout is the cluster-node-timeout of a RedisCluster's
// nodes: a master that does not answer for this long is failed over to its
// replica, within a few of these.
const clusterNodeTimeout = time.Second

// RedisCluster is a Redis Cluster of one test: redis-server processes with
// cluster-enabled yes, each on a free port of 127.0.0.1 with a directory of
// its own, joined by redis-cli --cluster create, without persistence. Its
// nodes are killed when the test ends.
//
//	c := testserver.StartRedisCluster(t, 3, 1) // 3 masters, a replica each
//	client := goredis.NewClusterClient(c.Options())
type RedisCluster struct {
	// Nodes are the cluster's servers, in the order redis-cli was given
	// them: it makes the first masters of them masters, the rest replicas.
	Nodes []*Redis
}

// StartRedisCluster starts masters masters with replicas replicas each and
// returns once every node reports the cluster ok and every replica has
// synchronised with its master. It fails the test when redis-server or
// redis-cli is not installed, and skips it under go test -short.
func StartRedisCluster(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil && !testing.Short() {
		t.Fatalf("testserver: this test creates a Redis Cluster with redis-cli, which is not installed (or run go test -short): %v", err)
	}
	c := &RedisCluster{}
	for range masters * (1 + replicas) {
		c.Nodes = append(c.Nodes, startRedis(t, Volatile,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10)))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("testserver: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := c.WaitHealthy(t.Context(), masters*replicas, 30*time.Second); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return c
}

// Addrs returns host:port of every node.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Options returns options of a cluster client that knows every node.
func (c *RedisCluster) Options() *goredis.ClusterOptions {
	return &goredis.ClusterOptions{Addrs: c.Addrs()}
}

// Node returns the node with address addr, or nil.
func (c *RedisCluster) Node(addr string) *Redis {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// MasterOf returns the node that serves key's hash slot now, as the
// cluster answers CLUSTER KEYSLOT and CLUSTER SHARDS.
func (c *RedisCluster) MasterOf(ctx context.Context, key string) (*Redis, error) {
	client := goredis.NewClusterClient(c.Options())
	defer func() { _ = client.Close() }()
	slot, err := client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER KEYSLOT %s: %w", key, err)
	}
	shards, err := client.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start > slot || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role != "master" {
					continue
				}
				if node := c.Node(net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))); node != nil {
					return node, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no node of the cluster serves slot %d of %s", slot, key)
}

// WaitHealthy waits up to timeout until every live node reports
// cluster_state:ok, agrees that every slot is served, and at least
// syncedReplicas replicas have finished their synchronisation with a live
// master.
func (c *RedisCluster) WaitHealthy(ctx context.Context, syncedReplicas int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = c.healthy(ctx, syncedReplicas); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis cluster %v not healthy after %s: %w", c.Addrs(), timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *RedisCluster) healthy(ctx context.Context, syncedReplicas int) error {
	synced := 0
	for _, n := range c.Nodes {
		if n.ping() != nil {
			continue // killed by the test
		}
		client := goredis.NewClient(n.Options())
		info, err := client.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = fmt.Errorf("%s: cluster state not ok", n.Addr)
		}
		var role []any
		if err == nil {
			role, err = client.Do(ctx, "ROLE").Slice()
		}
		_ = client.Close()
		if err != nil {
			return err
		}
		// A replica's ROLE: slave, master host, master port, state, offset.
		if len(role) >= 4 && role[0] == "slave" && role[3] == "connected" {
			synced++
		}
	}
	if synced < syncedReplicas {
		return fmt.Errorf("%d of %d replicas synchronised", synced, syncedReplicas)
	}
	return nil
}

// MoveSlot moves the hash slot of key, with every key in it, from its
// master to the master to, as redis-cli --cluster reshard does: the slot
// is marked importing on to and migrating on its owner, its keys are
// moved with MIGRATE a few at a time (meanwhile the owner answers ASK for
// keys it no longer holds), and then every master is told the slot's new
// owner (after which the old one answers MOVED).
func (c *RedisCluster) MoveSlot(ctx context.Context, key string, to *Redis) error {
	from, err := c.MasterOf(ctx, key)
	if err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("slot of %s: already served by %s", key, to.Addr)
	}
	src, dst := goredis.NewClient(from.Options()), goredis.NewClient(to.Options())
	defer func() { _ = src.Close(); _ = dst.Close() }()
	slot, err := src.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return err
	}
	srcID, err := src.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	dstID, err := dst.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
		return fmt.Errorf("CLUSTER SETSLOT %d IMPORTING: %w", slot, err)
	}
	if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		return fmt.Errorf("CLUSTER SETSLOT %d MIGRATING: %w", slot, err)
	}
	host, port, _ := net.SplitHostPort(to.Addr)
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 1).Result()
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("MIGRATE %v: %w", keys, err)
		}
	}
	for _, n := range c.Nodes {
		if n.ping() != nil {
			continue
		}
		client := goredis.NewClient(n.Options())
		role, err := client.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			err = client.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err()
		}
		_ = client.Close()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER SETSLOT %d NODE: %w", n.Addr, slot, err)
		}
	}
	return nil
}
