package testserver

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func TestRedisRestartKeepsWhatItsPersistenceKeeps(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		p        Persistence
		survives bool
	}{{"AOF", AOF, true}, {"Volatile", Volatile, false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := StartRedis(t, c.p)
			client := goredis.NewClient(srv.Options())
			t.Cleanup(func() { _ = client.Close() })
			if err := client.Set(t.Context(), "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			// As the restart command of Watermill's suite does: another
			// handle on the same directory kills the server with SIGKILL
			// and starts it again.
			opened, err := OpenRedis(srv.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := opened.Restart(); err != nil {
				t.Fatal(err)
			}
			n, err := client.Exists(t.Context(), "k").Result()
			if err != nil {
				t.Fatal(err)
			}
			if survived := n == 1; survived != c.survives {
				t.Errorf("the key survived SIGKILL and restart: %v, want %v", survived, c.survives)
			}
		})
	}
}
