package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/sensorhub/redis"
)

func TestLoadConfigRedisCluster(t *testing.T) {
	t.Parallel()
	t.Run("SeedsFromClusterURL", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(envOf(map[string]string{
			"REDIS_CLUSTER": "true", "REDIS_URL": "redis://u:pw@r1:7000?addr=r2:7000&addr=r3:7000",
			"SENSORHUB_STREAM": "{sensor}stream",
		}))
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.redisCluster
		if c == nil || !slices.Equal(c.Addrs, []string{"r1:7000", "r2:7000", "r3:7000"}) || c.Username != "u" || c.Password != "pw" ||
			c.ClusterStateReloadInterval != redis.DefaultClusterReloadInterval {
			t.Errorf("cluster options = %+v, want the three seeds, the user and password, and the slot map reloaded every %s", c, redis.DefaultClusterReloadInterval)
		}
	})
	t.Run("SeedFromHostAndPort", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(envOf(map[string]string{
			"REDIS_CLUSTER": "true", "REDIS_HOST": "r1", "REDIS_PORT": "7000", "REDIS_TLS": "true", "SENSORHUB_STREAM": "{sensor}stream",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c := cfg.redisCluster; c == nil || !slices.Equal(c.Addrs, []string{"r1:7000"}) || c.TLSConfig == nil || c.TLSConfig.ServerName != "r1" {
			t.Errorf("cluster options = %+v, want seed r1:7000 with TLS for r1", c)
		}
	})
	t.Run("Off", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(envOf(map[string]string{"REDIS_CLUSTER": "false"}))
		if err != nil || cfg.redisCluster != nil {
			t.Errorf("REDIS_CLUSTER=false: cluster options %+v, error %v; want none", cfg.redisCluster, err)
		}
	})
	t.Run("RefusesWhatBreaksOnACluster", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(envOf(map[string]string{"REDIS_CLUSTER": "true", "REDIS_DB": "3"}))
		if err == nil {
			t.Fatal("loadConfig accepted REDIS_DB=3 and the default stream name on a cluster")
		}
		for _, want := range []string{"REDIS_DB: must be 0", "SENSORHUB_STREAM: ", "must share a hash slot", "{sensor}stream"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
}
