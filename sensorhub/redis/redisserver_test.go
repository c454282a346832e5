package redis_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// serverCommand, as the first argument of this test binary, makes it manage a
// throwaway redis-server instead of running tests: TestMain hands
// "<binary> sensorhub-redis-server restart <dir> <port>" to serverMain. That
// is the RestartServiceCommand of Watermill's suite, so the restart is plain
// Go, needs no shell or redis-cli, and starts the server with exactly the
// arguments the test started it with.
const serverCommand = "sensorhub-redis-server"

// redisServer is a redis-server of one test: a free port, a directory of its
// own, AOF on. It is killed when the test ends.
type redisServer struct {
	Addr string
	dir  string
	port int
}

// startRedisServer starts a throwaway redis-server. When redis-server is not
// installed it fails the test, or skips it under -short.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testing.Short() {
			t.Skip("redis-server is not installed; skipped under -short")
		}
		t.Fatalf("this test starts its own redis-server, which is not installed (or run go test -short): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &redisServer{Addr: serverAddr(port), dir: t.TempDir(), port: port}
	if err := serverStart(s.dir, s.port); err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := serverKill(s.dir, s.port); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Options returns connection options for the server.
func (s *redisServer) Options() *goredis.Options {
	return &goredis.Options{Addr: s.Addr}
}

// RestartCommand kills the server with SIGKILL and starts it again with the
// same arguments and directory; it returns once the server answers PING.
func (s *redisServer) RestartCommand(t *testing.T) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, serverCommand, "restart", s.dir, strconv.Itoa(s.port)}
}

// Kill kills the server with SIGKILL and waits until its port is closed.
func (s *redisServer) Kill(t *testing.T) {
	t.Helper()
	if err := serverKill(s.dir, s.port); err != nil {
		t.Fatal(err)
	}
}

// Start starts the killed server again, on the same port and data.
func (s *redisServer) Start(t *testing.T) {
	t.Helper()
	if err := serverStart(s.dir, s.port); err != nil {
		t.Fatal(err)
	}
}

// serverMain is the test binary run as serverCommand, with the arguments
// "restart <dir> <port>".
func serverMain(args []string) int {
	if len(args) != 3 || args[0] != "restart" {
		fmt.Fprintf(os.Stderr, "usage: %s restart <dir> <port>\n", serverCommand)
		return 2
	}
	port, err := strconv.Atoi(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err = serverKill(args[1], port); err == nil {
		err = serverStart(args[1], port)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// serverArgs are the arguments of every start of the server in dir.
// appendfsync always: the suite kills the server with SIGKILL and expects
// every acknowledged XADD to survive it, which everysec does not promise.
func serverArgs(dir string, port int) []string {
	return []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--save", "",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
}

func serverAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func serverStart(dir string, port int) error {
	cmd := exec.Command("redis-server", serverArgs(dir, port)...)
	cmd.Dir = dir
	// Stdout and stderr stay unset (/dev/null): a server holding the test
	// binary's output open would keep go test waiting after the test exits.
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	// Reap it when it dies, whichever process kills it.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(dir, "server.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ping(port)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d not ready after 15s: %w\n%s", port, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serverKill(dir string, port int) error {
	raw, err := os.ReadFile(filepath.Join(dir, "server.pid"))
	if err != nil {
		return fmt.Errorf("kill redis-server: %w", err)
	}
	pid, err := strconv.Atoi(string(raw))
	if err != nil {
		return fmt.Errorf("kill redis-server: pid file: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill redis-server %d: %w", pid, err)
	}
	// The kernel closes the listener as the process dies; the next start
	// needs the port.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", serverAddr(port), time.Second)
		if err != nil {
			return nil
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server %d still listens on port %d 10s after SIGKILL", pid, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping reports whether a server answers PING on port; a server still loading
// its AOF answers -LOADING, which is not ready.
func ping(port int) error {
	c, err := net.DialTimeout("tcp", serverAddr(port), time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(reply, "+PONG") {
		return fmt.Errorf("PING: %s", strings.TrimSpace(reply))
	}
	return nil
}
