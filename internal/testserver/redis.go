package testserver

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

// Persistence is how a Redis server keeps its data across a kill.
type Persistence int

const (
	// AOF appends every write to an append-only file and fsyncs it before
	// answering (appendfsync always), so every acknowledged write survives
	// SIGKILL.
	AOF Persistence = iota
	// Volatile keeps nothing on disk: a restarted server starts empty, as a
	// Redis run with --save "" --appendonly no (the CI default) does.
	Volatile
)

// Redis is a redis-server of one test: a free port on 127.0.0.1 and a
// directory of its own. It is killed when the test ends. Tests that fault
// Redis use one so that the shared server is never restarted.
type Redis struct {
	// Addr is host:port of the server.
	Addr string
	// Dir holds the server's data, log, pid and arguments.
	Dir string
}

// StartRedis starts a throwaway redis-server with the given persistence.
// When redis-server is not installed it fails the test, or skips it under
// go test -short.
func StartRedis(t testing.TB, p Persistence) *Redis {
	t.Helper()
	return startRedis(t, p)
}

// startRedis starts a throwaway redis-server with the given persistence
// and, after the arguments StartRedis gives every server, extra.
func startRedis(t testing.TB, p Persistence, extra ...string) *Redis {
	t.Helper()
	if testing.Short() {
		t.Skip("testserver: starts its own redis-server; skipped under -short")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testserver: this test starts its own redis-server, which is not installed (or run go test -short): %v", err)
	}
	port := freePort(t)
	dir := t.TempDir()
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	if p == AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, extra...)
	if err := os.WriteFile(filepath.Join(dir, argsFile), []byte(strings.Join(args, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := s.Kill(); err != nil {
			t.Error(err)
		}
	})
	return s
}

const (
	argsFile = "redis.args"
	pidFile  = "redis.pid"
)

// OpenRedis returns the server whose directory is dir, for a process other
// than the test that started it, such as the restart command of Watermill's
// test suite.
func OpenRedis(dir string) (*Redis, error) {
	args, err := serverArgs(dir)
	if err != nil {
		return nil, err
	}
	for i := range args[:len(args)-1] {
		if args[i] == "--port" {
			return &Redis{Addr: net.JoinHostPort("127.0.0.1", args[i+1]), Dir: dir}, nil
		}
	}
	return nil, fmt.Errorf("testserver: %s names no port", filepath.Join(dir, argsFile))
}

func serverArgs(dir string) ([]string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, argsFile))
	if err != nil {
		return nil, fmt.Errorf("testserver: no server in %s: %w", dir, err)
	}
	return strings.Split(string(raw), "\n"), nil
}

// URL returns the server's redis:// URL, database 0.
func (s *Redis) URL() string { return "redis://" + s.Addr + "/0" }

// Options returns connection options for the server.
func (s *Redis) Options() *goredis.Options { return &goredis.Options{Addr: s.Addr} }

// Start starts the server with the arguments of its first start and returns
// once it answers PING, which a server still loading its AOF does not.
func (s *Redis) Start() error {
	args, err := serverArgs(s.Dir)
	if err != nil {
		return err
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.Dir
	// Stdout and stderr stay unset (/dev/null): a server holding the test
	// binary's output open would keep go test waiting after the test exits.
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testserver: start redis-server: %w", err)
	}
	// Reap it when it dies, whichever process kills it.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(s.Dir, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("testserver: redis-server on %s not ready after 15s: %w\n%s", s.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server with SIGKILL and returns once its port is closed.
// Killing a server that is not running does nothing.
func (s *Redis) Kill() error {
	raw, err := os.ReadFile(filepath.Join(s.Dir, pidFile))
	if err != nil {
		return fmt.Errorf("testserver: kill redis-server: %w", err)
	}
	pid, err := strconv.Atoi(string(raw))
	if err != nil {
		return fmt.Errorf("testserver: kill redis-server: pid file: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("testserver: kill redis-server %d: %w", pid, err)
	}
	// The kernel closes the listener as the process dies; the next start
	// needs the port.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return nil
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("testserver: redis-server %d still listens on %s 10s after SIGKILL", pid, s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart kills the server with SIGKILL and starts it again.
func (s *Redis) Restart() error {
	if err := s.Kill(); err != nil {
		return err
	}
	return s.Start()
}

// ping reports whether the server answers PING; -LOADING is not an answer.
func (s *Redis) ping() error {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
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
