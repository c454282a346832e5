package main

// The harness of the suites that run the real binary (service, faults, bad
// input, security, metrics, outbox): testEnv is one test's isolated world
// and the configuration a binary gets in it, process is one binary running
// there. Every method of both is in this file; a suite's own checks are
// functions in its file.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/procfs"
	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// faultHooksTag is the build tag that compiles the SIGKILL hooks of the
// fault suite into the binary (faulthooks.go). The tests run a binary built
// with it; the default build must have none (TestDefaultBuildHasNoFaultHooks).
const faultHooksTag = "faulthooks"

// binary is the sensorhub binary, with the fault hooks, built once for the
// tests that run it as a subprocess (signals, exit codes, crashes).
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "sensorhub-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sensorhub")
	if err := buildBinary(binary, faultHooksTag); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds this package's binary into out, with the build tags
// tags.
func buildBinary(out string, tags ...string) error {
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	b, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// legacyReading is the reference message of every suite (DESIGN.md §2).
const legacyReading = `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`

// testEnv is one test's isolated world: its own schema, stream, channel and
// HTTP port, and the variables that point the binary at them.
type testEnv struct {
	vars   map[string]string
	db     *postgrestest.DB
	redis  goredis.UniversalClient
	stream string
	api    string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	db := postgrestest.New(t)
	stream := redistest.Name(t, "e2e")
	api := freeAddr(t)
	_, port, _ := net.SplitHostPort(api)
	return &testEnv{
		vars: map[string]string{
			"DATABASE_URL":       db.URL,
			"REDIS_URL":          redistest.URL(),
			"SENSORHUB_STREAM":   stream,
			"SENSORHUB_CHANNEL":  stream,
			"SENSORHUB_CONSUMER": "e2e",
			// The service forwards events; each test gets a stream of its own.
			"SENSORHUB_EVENTS_STREAM": redistest.Name(t, "events"),
			"SENSORHUB_LOG_FORMAT":    "json",
			"API_HOST":                "127.0.0.1",
			"API_PORT":                port,
		},
		db:     db,
		redis:  redistest.Client(t),
		stream: stream,
		api:    api,
	}
}

// withOwnPort returns a copy of e for a second process beside e's: same
// database, stream and channel, its own HTTP port.
func (e *testEnv) withOwnPort(t *testing.T) *testEnv {
	t.Helper()
	c := *e
	c.vars = maps.Clone(e.vars)
	c.api = freeAddr(t)
	_, port, _ := net.SplitHostPort(c.api)
	c.vars["API_PORT"] = port
	return &c
}

func (e *testEnv) getenv(k string) string { return e.vars[k] }

func (e *testEnv) environ() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range e.vars {
		env = append(env, k+"="+v)
	}
	return env
}

// cli runs one command in process and returns its exit code and output.
func (e *testEnv) cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(t.Context(), args, e.getenv, &out, &out)
	return code, out.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The service's HTTP endpoints.

// health returns the status code and report of GET path.
func (e *testEnv) health(path string) (int, map[string]any) {
	resp, err := http.Get("http://" + e.api + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// component returns the status code of GET /healthcheck and the status
// ("ok" or "down") it reports for the component name.
func (e *testEnv) component(name string) (code int, status string) {
	code, body := e.health("/healthcheck")
	comps, _ := body["components"].(map[string]any)
	c, _ := comps[name].(map[string]any)
	status, _ = c["status"].(string)
	return code, status
}

func (e *testEnv) waitHealthy(t *testing.T) {
	t.Helper()
	poll.Until(t, 20*time.Second, "GET /healthcheck answers 200", func() bool {
		code, _ := e.health("/healthcheck")
		return code == http.StatusOK
	})
}

// scrapeMetrics returns the body of GET /metrics and its samples by series
// (name and labels as written, e.g. `x_total{reason="y"}`).
func (e *testEnv) scrapeMetrics(t *testing.T) (string, map[string]float64) {
	t.Helper()
	resp, err := http.Get("http://" + e.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("GET /metrics: bad sample line %q", line)
		}
		samples[line[:i]] = v
	}
	return string(b), samples
}

// goroutines returns go_goroutines from the service's /metrics.
func (e *testEnv) goroutines(t *testing.T) int {
	t.Helper()
	_, samples := e.scrapeMetrics(t)
	n, ok := samples["go_goroutines"]
	if !ok {
		t.Fatal("GET /metrics: no go_goroutines")
	}
	return int(n)
}

// The test's database.

// rows returns the number of readings, of those matching where if it is
// not empty.
func (e *testEnv) rows(t *testing.T, where string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM readings "+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rowCount returns the number of rows in table.
func (e *testEnv) rowCount(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	if err := e.db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{e.db.Schema, table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// tableCounts returns the tables of the test's schema with their row counts.
func (e *testEnv) tableCounts(t *testing.T) map[string]int64 {
	t.Helper()
	// Partitions are left out: their rows are counted in their table's.
	rows, err := e.db.Pool.Query(t.Context(), `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition`, e.db.Schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[string]int64, len(names))
	for _, name := range names {
		counts[name] = e.rowCount(t, name)
	}
	return counts
}

// The test's streams.

func (e *testEnv) xadd(t *testing.T, payload string) string {
	t.Helper()
	id, err := e.redis.XAdd(t.Context(), &goredis.XAddArgs{Stream: e.stream, Values: []any{"payload", payload}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *testEnv) poisoned(t *testing.T) []goredis.XMessage {
	t.Helper()
	msgs, err := e.redis.XRange(t.Context(), e.stream+".poison", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// pending returns the number of entries of the service's group that are
// delivered and not yet acked, of consumer alone when it is not empty.
func (e *testEnv) pending(t *testing.T, consumer string) int {
	t.Helper()
	p, err := e.redis.XPendingExt(t.Context(), &goredis.XPendingExtArgs{
		Stream: e.stream, Group: redis.DefaultGroup, Consumer: consumer, Start: "-", End: "+", Count: 1 << 20,
	}).Result()
	if err != nil {
		t.Fatalf("XPENDING %s: %v", e.stream, err)
	}
	return len(p)
}

// events reads the events stream, in order.
func (e *testEnv) events(t *testing.T, stream string) []sensorhub.Event {
	t.Helper()
	return redistest.Events(t, e.redis, stream)
}

// process is a running sensorhub binary.
type process struct {
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan error
}

// start runs the binary with args and kills it when the test ends; its
// output is logged then if the test failed.
func (e *testEnv) start(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, args...), logs: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd.Env = e.environ()
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("sensorhub output:\n%s", p.logs.String())
		}
	})
	return p
}

// signal sends sig to the process.
func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to sensorhub %s: %v", sig, p.cmd.Args[1], err)
	}
}

// wait returns the exit code once the process ends, failing after timeout.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		p.done <- nil // for the cleanup
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("sensorhub did not exit within %s", timeout)
		return -1
	}
}

// alive fails the test when the process has exited.
func (p *process) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		t.Fatalf("sensorhub %s exited (%v); it must keep running\n%s", p.cmd.Args[1], err, p.logs)
	default:
	}
}

// killedBySIGKILL reports whether the process, which has ended, ended by
// SIGKILL.
func (p *process) killedBySIGKILL() bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// memory returns the resident set size and its peak (VmRSS, VmHWM) of the
// running process, in bytes.
func (p *process) memory(t *testing.T) (rss, peak int64) {
	t.Helper()
	rss, peak, err := procfs.RSS(p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("read the service's memory: %v", err)
	}
	return rss, peak
}

// statusBytes returns a size field of /proc/<pid>/status, such as RssFile,
// in bytes.
func (p *process) statusBytes(t *testing.T, field string) int64 {
	t.Helper()
	n, err := procfs.StatusBytes(p.cmd.Process.Pid, field)
	if err != nil {
		t.Fatalf("read the service's status: %v", err)
	}
	return n
}

// resetPeakRSS sets the process's peak resident set size (VmHWM) to its
// current one.
func (p *process) resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := procfs.ResetPeakRSS(p.cmd.Process.Pid); err != nil {
		t.Fatalf("reset the service's peak RSS: %v", err)
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func (p *process) cpuTime(t *testing.T) time.Duration {
	t.Helper()
	d, err := procfs.CPUTime(p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("read the service's CPU time: %v", err)
	}
	return d
}
