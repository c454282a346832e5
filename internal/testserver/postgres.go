package testserver

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// Postgres is a PostgreSQL cluster of one test, made with initdb in a
// directory of its own and run with pg_ctl on a free port, for tests that
// stop and restart PostgreSQL without touching the shared server. It has
// trust authentication for the superuser postgres and is stopped and
// removed when the test ends.
type Postgres struct {
	// URL is the postgres:// URL of the cluster's database postgres.
	URL  string
	dir  string // data directory and socket directory parent
	port int
	bin  string // directory of initdb, pg_ctl
	cred *syscall.Credential
}

// StartPostgres creates and starts a cluster. PostgreSQL refuses to run as
// root, so as root the cluster belongs to, and runs as, the operating
// system user postgres. It fails the test when the server programs are not
// installed, and skips it under go test -short.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	if testing.Short() {
		t.Skip("testserver: starts its own PostgreSQL; skipped under -short")
	}
	bin, err := serverBinDir()
	if err != nil {
		t.Fatalf("testserver: this test runs its own PostgreSQL cluster, whose programs were not found (or run go test -short): %v", err)
	}
	port := freePort(t)

	// Not t.TempDir: its parent is private to root, where postgres could
	// not reach the data directory.
	root, err := os.MkdirTemp("", "sensorhub-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Postgres{
		URL:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		dir:  root,
		port: port,
		bin:  bin,
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if os.Geteuid() == 0 {
		s.cred, err = postgresCredential(root)
		if err != nil {
			t.Fatalf("testserver: %v", err)
		}
	}
	if err := s.pgctl("initdb", "-o", "--auth=trust --username=postgres --encoding=UTF8 --no-sync"); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop("immediate") })
	return s
}

// New creates a schema with every migration applied on the cluster
// (postgrestest.NewAt). The cluster must be running when the test ends, for
// the schema to be dropped.
func (s *Postgres) New(t testing.TB) *postgrestest.DB {
	t.Helper()
	return postgrestest.NewAt(t, s.URL)
}

// Start starts the stopped cluster and returns once it accepts connections.
func (s *Postgres) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", s.port, s.dir)
	return s.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(s.dir, "server.log"), "-o", opts)
}

// Stop stops the cluster with pg_ctl's shutdown mode: "smart", "fast"
// (abort sessions, checkpoint) or "immediate" (abort every process without a
// checkpoint, as a crash does: the next start replays the WAL).
func (s *Postgres) Stop(mode string) error {
	return s.pgctl("stop", "-w", "-t", "60", "-m", mode)
}

// Restart stops the cluster with mode and starts it again.
func (s *Postgres) Restart(mode string) error {
	if err := s.Stop(mode); err != nil {
		return err
	}
	return s.Start()
}

// Log returns what the server logged so far.
func (s *Postgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

func (s *Postgres) pgctl(args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, "pg_ctl"), append(args, "-D", filepath.Join(s.dir, "data"))...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", args[0], err, out.String())
	}
	return nil
}

// serverBinDir finds the directory of initdb and pg_ctl, which Debian keeps
// off PATH.
func serverBinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	if path, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(path), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", fmt.Errorf("pg_ctl is neither next to pg_config --bindir, on PATH, nor in /usr/lib/postgresql/*/bin")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// postgresCredential hands dir to the operating system user postgres and
// returns the credential to run its server programs with.
func postgresCredential(dir string) (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the cluster needs the operating system user postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
