package main

import (
	"cmp"
	"context"
	json "encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/internal/procfs"
)

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// result is one phase's measurement.
type result struct {
	readings int
	elapsed  time.Duration
	// Set for the phases that run the sensorhub binary.
	peakRSS    int64
	cpu        time.Duration
	p50, p99   time.Duration
	pending    int64
	duplicates int
	// settled is how long the rollups took to settle after a drain with
	// rollups on.
	settled time.Duration
	// rollupLagP99 is the 99th percentile of the rollup lag while live.
	rollupLagP99 time.Duration
	// reads are the rollup reads' latencies after a drain with rollups
	// on, and after the growth drain once its rollups are rebuilt.
	reads rollupReads
	// rates are the rates of every run of a phase run in rounds, in
	// ascending order (see median).
	rates []float64
	// p99s are the 99th percentiles of the latency of every run of a live
	// phase run in rounds, in ascending order (see median).
	p99s []time.Duration
}

func (r result) rate() float64 { return float64(r.readings) / r.elapsed.Seconds() }

// median returns the run of a phase with the median rate (of two in the
// middle, the slower), with the rates and latency p99s of every run, the
// highest peak RSS, and the duplicated readings and pending entries of all
// of them: the memory bound, the latency target (see worstP99) and the
// correctness checks hold for every run. The drains
// of one build moved by a tenth of their rate from one run to the next on
// the development machine, which one run each could not tell from a
// change.
func median(runs []result) result {
	sorted := slices.SortedFunc(slices.Values(runs), func(a, b result) int { return cmp.Compare(a.rate(), b.rate()) })
	m := sorted[(len(sorted)-1)/2]
	m.rates, m.p99s, m.duplicates, m.pending = nil, nil, 0, 0
	for _, r := range sorted {
		m.rates = append(m.rates, r.rate())
		m.p99s = append(m.p99s, r.p99)
		m.peakRSS = max(m.peakRSS, r.peakRSS)
		m.duplicates += r.duplicates
		m.pending += r.pending
	}
	slices.Sort(m.p99s)
	return m
}

// worstP99 is the highest latency p99 of the runs of a phase: the target
// holds in every run, not in the median one.
func (r result) worstP99() time.Duration {
	if len(r.p99s) == 0 {
		return r.p99
	}
	return r.p99s[len(r.p99s)-1]
}

// cpuPerReading is the binary's CPU time per reading.
func (r result) cpuPerReading() time.Duration {
	return r.cpu / time.Duration(max(r.readings, 1))
}

var readingColumns = []string{"station", "sensor", "ts", "value", "unit"}

// measureCopy copies the readings straight into a fresh readings table.
func (e *environment) measureCopy(ctx context.Context, readings []reading) (result, error) {
	schema, _, err := e.newSchema(ctx)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	n, err := e.admin.CopyFrom(ctx, pgx.Identifier{schema, "readings"}, readingColumns,
		pgx.CopyFromSlice(len(readings), func(i int) ([]any, error) {
			r := readings[i]
			return []any{r.station, r.sensor, r.ts, r.value, "x"}, nil
		}))
	if err != nil {
		return result{}, err
	}
	return result{readings: int(n), elapsed: time.Since(start)}, nil
}

// measureLoop drains a preloaded stream with a minimal hand-written consumer
// into a readings table with the same unique key.
func (e *environment) measureLoop(ctx context.Context, readings []reading) (result, error) {
	schema, _, err := e.newSchema(ctx)
	if err != nil {
		return result{}, err
	}
	stream := e.newStream()
	if err := e.preload(ctx, stream, readings); err != nil {
		return result{}, err
	}
	if err := e.redis.XGroupCreate(ctx, stream, "loop", "0").Err(); err != nil {
		return result{}, err
	}

	type batch struct {
		ids  []string
		rows [][]any
	}
	batches := make(chan batch, 2)
	errs := make(chan error, 3)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// fail records the first error and stops the loop; errors caused by
	// stopping it, once every row is in, are not failures.
	fail := func(err error) {
		if ctx.Err() == nil {
			select {
			case errs <- err:
			default:
			}
		}
		cancel()
	}
	start := time.Now()

	go func() { // reader
		defer close(batches)
		for ctx.Err() == nil {
			res, err := e.redis.XReadGroup(ctx, &goredis.XReadGroupArgs{
				Group: "loop", Consumer: "loop", Streams: []string{stream, ">"}, Count: 5000, Block: 20 * time.Millisecond,
			}).Result()
			if errors.Is(err, goredis.Nil) {
				continue
			}
			if err != nil {
				fail(err)
				return
			}
			var b batch
			for _, m := range res[0].Messages {
				var w struct {
					Sensor, Timestamp, Station string
					Value                      float64
				}
				if err := json.Unmarshal([]byte(m.Values["payload"].(string)), &w, json.MatchCaseInsensitiveNames(true)); err != nil {
					fail(err)
					return
				}
				ts, err := time.Parse(time.DateTime, w.Timestamp)
				if err != nil {
					fail(err)
					return
				}
				b.ids = append(b.ids, m.ID)
				b.rows = append(b.rows, []any{w.Station, w.Sensor, ts, w.Value, "x"})
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 2 { // writers
		wg.Go(func() {
			for b := range batches {
				if err := e.loopWrite(ctx, schema, stream, b.ids, b.rows); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	waitErr := e.waitDrained(ctx, stream, "loop", schema, len(readings), len(readings), drainTimeout(len(readings)))
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		return result{}, err
	default:
	}
	if waitErr != nil {
		return result{}, waitErr
	}
	return result{readings: len(readings), elapsed: elapsed}, nil
}

// loopWrite is the minimal loop's transaction: COPY into a staging table,
// insert what is new, commit, then ack.
func (e *environment) loopWrite(ctx context.Context, schema, stream string, ids []string, rows [][]any) error {
	tx, err := e.admin.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE staging (LIKE `+schema+`.readings INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging"}, readingColumns, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.readings (station, sensor, ts, value, unit)
		SELECT station, sensor, ts, value, unit FROM staging ON CONFLICT DO NOTHING`); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	return e.redis.XAck(ctx, stream, "loop", ids...).Err()
}

// measureDrain times the sensorhub binary draining a preloaded stream into
// an empty table; env adds variables to the binary's environment. With
// rollups on, the result also says how long the rollups took to settle
// after the drain.
func (e *environment) measureDrain(ctx context.Context, readings []reading, rollups bool, env ...string) (result, error) {
	schema, dsn, err := e.newSchema(ctx)
	if err != nil {
		return result{}, err
	}
	if !rollups {
		if env, err = e.rollupsOff(ctx, schema, env); err != nil {
			return result{}, err
		}
	}
	return e.measureDrainInto(ctx, schema, dsn, readings, rollups, env...)
}

// measureDrainInto is measureDrain into the table of schema, which may
// hold rows already; with rollups off, the caller has turned them off.
func (e *environment) measureDrainInto(ctx context.Context, schema, dsn string, readings []reading, rollups bool, env ...string) (result, error) {
	before, err := e.rows(ctx, schema)
	if err != nil {
		return result{}, err
	}
	stream := e.newStream()
	if err := e.preload(ctx, stream, readings); err != nil {
		return result{}, err
	}
	p, err := e.startBinary(ctx, dsn, stream, env...)
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	start := time.Now()
	if err := e.waitDrained(p.context(ctx), stream, "sensorhub", schema, len(readings), before+len(readings), drainTimeout(len(readings))); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, p.logs.tail())
	}
	res := result{readings: len(readings), elapsed: time.Since(start)}
	if rollups {
		if res.settled, err = e.waitRollups(p.context(ctx), schema, drainTimeout(len(readings))); err != nil {
			return result{}, fmt.Errorf("%w\n%s", err, p.logs.tail())
		}
		if res.reads, err = e.measureRollupReads(ctx, schema); err != nil {
			return result{}, fmt.Errorf("rollup reads: %w", err)
		}
	}
	return e.finish(ctx, p, schema, stream, res)
}

// measureLive feeds the binary at rate readings/s for d and reports the
// latency from publish to the row's commit. The feed starts once the
// binary is ready: the phase measures a running service, not its
// start-up (about 0.1 s here, in which 1,000 readings queue). With rollups
// off the phase runs as a drain with them off (measureDrain); env adds
// variables to the binary's environment.
//
// liveStations is how many stations the live phase's readings come from,
// each sending every sensor type in turn: at 10,000 readings/s a series
// gets a reading every 1.2 s, a busy but real network. (Until stop 17 each
// live reading came from a station of its own: the phase measured the
// creation of stations, cursors and staleness rows rather than ingest, and
// staleness's sweeper announced hundreds of thousands of them stale.)
const liveStations = 1000

func (e *environment) measureLive(ctx context.Context, rate int, d time.Duration, rollups bool, env ...string) (result, error) {
	schema, dsn, err := e.newSchema(ctx)
	if err != nil {
		return result{}, err
	}
	if !rollups {
		if env, err = e.rollupsOff(ctx, schema, env); err != nil {
			return result{}, err
		}
	}
	stream := e.newStream()
	p, _, err := e.startServing(ctx, dsn, stream, env...)
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	cpuBefore := p.cpu()
	rollupLag := e.sampleRollupLag(ctx, schema)

	start := time.Now()
	sent, err := e.feed(ctx, stream, rate, d, liveStations, "live-")
	if err != nil {
		return result{}, err
	}
	// A service that does not keep up catches up after the feed, within a
	// drain's time: its rate and latency tell, not a failed wait.
	if err := e.waitDrained(p.context(ctx), stream, "sensorhub", schema, sent, sent, drainTimeout(sent)); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, p.logs.tail())
	}
	res := result{readings: sent, elapsed: time.Since(start), rollupLagP99: rollupLag()}
	if res.p50, res.p99, err = e.liveLatency(ctx, schema, start); err != nil {
		return result{}, err
	}
	res, err = e.finish(ctx, p, schema, stream, res)
	res.cpu -= cpuBefore
	return res, err
}

// feed publishes rate readings/s to stream for d and returns how many it
// sent: from stations stations named prefix and a number, each sending
// every sensor type in turn. Every millisecond it publishes the readings
// due by then. The device time of each reading is its publish time, so
// that the table itself holds the latency: received_at - ts (liveLatency).
func (e *environment) feed(ctx context.Context, stream string, rate int, d time.Duration, stations int, prefix string) (int, error) {
	const tick = time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	start := time.Now()
	sent := 0
	for now := start; now.Sub(start) < d; now = <-ticker.C {
		due := int(float64(rate) * now.Sub(start).Seconds())
		if due <= sent {
			continue
		}
		pipe := e.redis.Pipeline()
		for ; sent < due; sent++ {
			ts := time.Now().UTC()
			t := sensorTypes[(sent/stations)%len(sensorTypes)]
			payload := fmt.Sprintf(`{"sensor":%q,"value":%v,"timestamp":%q,"station":"%s%d"}`,
				t.name, valueAt(t, sent/(stations*len(sensorTypes))), ts.Format(time.RFC3339Nano), prefix, sent%stations)
			pipe.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return sent, fmt.Errorf("publish: %w", err)
		}
	}
	return sent, nil
}

// liveLatency returns the median and 99th percentile of the latency from
// publish to commit of the readings in schema with device times from
// since on: those feed published.
func (e *environment) liveLatency(ctx context.Context, schema string, since time.Time) (p50, p99 time.Duration, err error) {
	var s50, s99 float64
	err = e.admin.QueryRow(ctx, `SELECT
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts))
		FROM `+schema+`.readings WHERE NOT derived AND ts >= $1`, since.Add(-time.Second)).Scan(&s50, &s99)
	return seconds(s50), seconds(s99), err
}

// drainTimeout bounds the wait for n rows: generous, but finite when
// something is stuck.
func drainTimeout(n int) time.Duration {
	return 30*time.Second + time.Duration(n/2000)*time.Second
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// finish records the binary's resources and checks the outcome: no
// duplicates and an empty pending list.
func (e *environment) finish(ctx context.Context, p *process, schema, stream string, res result) (result, error) {
	res.peakRSS, res.cpu = p.peakRSS(), p.cpu()
	if err := e.admin.QueryRow(ctx, `SELECT count(*) - count(DISTINCT (station, sensor, ts)) FROM `+schema+`.readings`).Scan(&res.duplicates); err != nil {
		return res, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending, err := e.redis.XPending(ctx, stream, "sensorhub").Result()
		if err != nil {
			return res, err
		}
		res.pending = pending.Count
		if res.pending == 0 || time.Now().After(deadline) {
			return res, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// process is a running sensorhub binary.
type process struct {
	cmd    *exec.Cmd
	logs   *tailBuffer
	exited chan struct{} // closed once the process has ended
}

// context returns a context that ends when ctx does or the process exits,
// so that a phase waiting for rows fails at once when the binary dies.
func (p *process) context(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		select {
		case <-p.exited:
		case <-ctx.Done():
		}
	}()
	return ctx
}

func (e *environment) startBinary(ctx context.Context, dsn, stream string, env ...string) (*process, error) {
	cmd := exec.CommandContext(ctx, e.opts.binary, "run")
	// Only what the run needs: DB_* or REDIS_* of the caller's environment
	// would clash with the URLs.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")},
		"DATABASE_URL="+dsn, "REDIS_URL="+e.opts.redisURL,
		"SENSORHUB_STREAM="+stream, "SENSORHUB_CHANNEL="+stream, "SENSORHUB_CONSUMER=bench",
		"SENSORHUB_EVENTS_STREAM="+stream+eventsSuffix,
		"API_HOST=127.0.0.1", "API_PORT=0", // any free port: the bench asks nothing of it
		"SENSORHUB_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	logs := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// startServing starts the binary with its HTTP server on a free loopback
// address and waits until its /healthcheck answers 200; it returns the
// process and the server's base URL.
func (e *environment) startServing(ctx context.Context, dsn, stream string, env ...string) (*process, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	p, err := e.startBinary(ctx, dsn, stream, append(slices.Clip(env), "API_PORT="+port)...)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := waitHealthy(p.context(ctx), base); err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%w\n%s", err, p.logs.tail())
	}
	return p, base, nil
}

// waitHealthy polls base's /healthcheck until it answers 200.
func waitHealthy(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("the binary's /healthcheck is not 200 within 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// peakRSS reads the process's high-water mark of resident memory, or 0
// when /proc cannot tell it.
func (p *process) peakRSS() int64 {
	_, peak, _ := procfs.RSS(p.cmd.Process.Pid)
	return peak
}

// cpu reads the user and system CPU time the process has used, or 0 when
// /proc cannot tell it.
func (p *process) cpu() time.Duration {
	d, _ := procfs.CPUTime(p.cmd.Process.Pid)
	return d
}

// tailBuffer keeps the last 8 KiB a process wrote, for error reports.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8<<10 {
		t.buf = t.buf[len(t.buf)-8<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
