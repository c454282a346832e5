package main

import (
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

// redisCluster makes every Redis client of the service, with
// REDIS_CLUSTER=true, a cluster client. Its seed nodes are the address of
// c.redis (REDIS_URL, or REDIS_HOST and REDIS_PORT) and those of the addr
// parameters of REDIS_URL in go-redis's cluster URL form
// (redis://host1:6379?addr=host2:6379&addr=host3:6379), with c.redis's
// user, password and TLS. A Redis Cluster has database 0 only, so REDIS_DB
// is refused, and SENSORHUB_STREAM must carry a hash tag (see
// redis.Config.Validate). redisURL is REDIS_URL's value, already read.
func (e *env) redisCluster(c *config, redisURL string) {
	if c.redis == nil {
		return // REDIS_URL is invalid, and reported
	}
	if c.redis.DB != 0 {
		e.fail("REDIS_DB", "must be 0 with REDIS_CLUSTER=true: a Redis Cluster has database 0 only")
	}
	opts := &goredis.ClusterOptions{Addrs: []string{c.redis.Addr}}
	if redisURL != "" {
		opts, _ = goredis.ParseClusterURL(redisURL) // valid: clusterSeed parsed it
	}
	opts.Username, opts.Password, opts.TLSConfig = c.redis.Username, c.redis.Password, c.redis.TLSConfig
	// go-redis reloads its slot map on MOVED and ASK, but not when a master
	// stops answering: without this, the service's clients would dial a
	// dead master for a minute after its replica took over.
	opts.ClusterStateReloadInterval = redis.DefaultClusterReloadInterval
	if err := (redis.Config{ClusterOptions: opts, Stream: c.stream}).Validate(); err != nil {
		e.fail("SENSORHUB_STREAM", "%v", err)
	}
	c.redisCluster = opts
}

// clusterSeed returns the options of the first seed node of a cluster URL,
// which may name more nodes (addr=…) than goredis.ParseURL accepts, for
// the checks and the TLS settings that apply to every node.
func clusterSeed(redisURL string) (*goredis.Options, error) {
	opts, err := goredis.ParseClusterURL(redisURL)
	if err != nil {
		return nil, err
	}
	return &goredis.Options{Addr: opts.Addrs[0], Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig}, nil
}

// newRedisClient returns a client of the service's Redis: a cluster client
// with REDIS_CLUSTER=true, a plain one otherwise. The caller closes it.
func (c config) newRedisClient() goredis.UniversalClient {
	if c.redisCluster != nil {
		return goredis.NewClusterClient(c.redisCluster)
	}
	return goredis.NewClient(c.redis)
}
