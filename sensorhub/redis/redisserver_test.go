package redis_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/sensorhub/sensorhub/internal/testserver"
)

// serverCommand, as the first argument of this test binary, makes it restart
// a throwaway redis-server instead of running tests: TestMain hands
// "<binary> sensorhub-redis-server restart <dir>" to serverMain. That is the
// RestartServiceCommand of Watermill's suite, so the restart is plain Go,
// needs no shell or redis-cli, and starts the server with exactly the
// arguments the test started it with.
const serverCommand = "sensorhub-redis-server"

// redisServer is a throwaway redis-server with AOF, whose restart Watermill's
// suite can run as a command.
type redisServer struct{ *testserver.Redis }

func startRedisServer(t *testing.T) redisServer {
	t.Helper()
	return redisServer{testserver.StartRedis(t, testserver.AOF)}
}

// RestartCommand is the command that kills the server with SIGKILL and starts
// it again on the same port and data.
func (s redisServer) RestartCommand(t *testing.T) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, serverCommand, "restart", s.Dir}
}

// serverMain is the test binary run as serverCommand, with the arguments
// "restart <dir>".
func serverMain(args []string) int {
	if len(args) != 2 || args[0] != "restart" {
		fmt.Fprintf(os.Stderr, "usage: %s restart <dir>\n", serverCommand)
		return 2
	}
	srv, err := testserver.OpenRedis(args[1])
	if err == nil {
		err = srv.Restart()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
