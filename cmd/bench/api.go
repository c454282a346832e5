package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The read API phase (issue 15): the binary serves the API on a database
// of a year of readings and the run's while it ingests at the live rate,
// and a client asks it apiRate requests per second, in turn: the stations
// with their latest values, one day of one sensor's 1-minute readings, and
// a year of its daily aggregates.
const (
	apiStations = 50
	apiRate     = 100
	// Targets: p99 of each request, and of the ingest latency meanwhile,
	// with at least targetAPIStored readings stored.
	targetAPIStationsP99 = 10 * time.Millisecond
	targetAPIDayP99      = 20 * time.Millisecond
	targetAPIYearP99     = 10 * time.Millisecond
	targetAPIStored      = 10_000_000
)

// apiResult is the API phase's measurement.
type apiResult struct {
	// stored is the readings in the database while it was queried.
	stored int
	// requests counts the requests; the latencies are by kind.
	requests            int
	stations, day, year latency
	// ingest is the live feed meanwhile.
	ingest result
}

// apiRequests are the requests the client sends in turn.
var apiRequests = []struct{ name, path string }{
	{"stations", "/api/v1/stations"},
	{"day", "/api/v1/readings?station=api-day&sensor=temperature&from=2024-11-30T00:00:00Z&to=2024-12-01T00:00:00Z&limit=1440"},
	{"year", "/api/v1/aggregates?station=api-day&sensor=temperature&interval=1d&from=2023-12-01T00:00:00Z&to=2024-12-01T00:00:00Z"},
}

// measureAPI stores preload readings of the apiStations stations spread
// over the year before benchStart in its monthly partitions (as the
// growth phase does, rollups off while they are copied: the year of
// aggregates read is filled directly), then readings (from the same
// stations), a day of 1-minute readings and a year of daily aggregates of
// one more, then runs the binary on them fed at rate readings/s for d
// while the client asks the API.
func (e *environment) measureAPI(ctx context.Context, readings []reading, preload, rate int, d time.Duration) (apiResult, error) {
	schema, dsn, err := e.newSchema(ctx)
	if err != nil {
		return apiResult{}, err
	}
	if err := e.rollupTriggers(ctx, schema, "DISABLE"); err != nil {
		return apiResult{}, err
	}
	if err := e.preloadTable(ctx, schema, dsn, preload, apiStations); err != nil {
		return apiResult{}, fmt.Errorf("preload %d readings: %w", preload, err)
	}
	if err := e.rollupTriggers(ctx, schema, "ENABLE"); err != nil {
		return apiResult{}, err
	}
	if _, err := e.admin.CopyFrom(ctx, pgx.Identifier{schema, "readings"}, readingColumns,
		pgx.CopyFromSlice(len(readings), func(i int) ([]any, error) {
			r := readings[i]
			return []any{r.station, r.sensor, r.ts, r.value, "Cel"}, nil
		})); err != nil {
		return apiResult{}, fmt.Errorf("store readings: %w", err)
	}
	// The schema name is the run's own (randomName), not input.
	for _, sql := range []string{
		`INSERT INTO ` + schema + `.readings (station, sensor, ts, value, unit)
		 SELECT 'api-day', 'temperature', '2024-11-30'::timestamptz + m * interval '1 minute', m / 100.0, 'Cel' FROM generate_series(0, 1439) m`,
		`INSERT INTO ` + schema + `.readings_1d (station, sensor, bucket, count, avg, min, max)
		 SELECT 'api-day', 'temperature', '2023-12-01'::timestamptz + d * interval '1 day', 1440, d / 10.0, 0, d / 5.0 FROM generate_series(0, 365) d`,
		`INSERT INTO ` + schema + `.stations (id) SELECT DISTINCT station FROM ` + schema + `.reading_series`,
		`ANALYZE ` + schema + `.readings`,
	} {
		if _, err := e.admin.Exec(ctx, sql); err != nil {
			return apiResult{}, err
		}
	}
	stored := preload + len(readings) + 1440

	stream := e.newStream()
	p, base, err := e.startServing(ctx, dsn, stream)
	if err != nil {
		return apiResult{}, err
	}
	defer p.stop()
	// The stored readings reached the table by COPY, whose rollups the
	// service computes first: the phase measures the API beside a steady
	// ingest, not beside that catch-up.
	if _, err := e.waitRollups(p.context(ctx), schema, time.Minute); err != nil {
		return apiResult{}, fmt.Errorf("%w\n%s", err, p.logs.tail())
	}

	start := time.Now()
	fed := make(chan error, 1)
	var sent int
	go func() {
		var err error
		// The stations of the stored readings: the API lists 51.
		sent, err = e.feed(ctx, stream, rate, d, apiStations, "station-")
		fed <- err
	}()
	latencies, err := askAPI(ctx, base, d)
	if ferr := <-fed; err == nil {
		err = ferr
	}
	if err != nil {
		return apiResult{}, fmt.Errorf("%w\n%s", err, p.logs.tail())
	}
	// Only the fed rows are counted, in the partitions of their device
	// times: a count of the 10 million stored takes seconds.
	if err := e.waitAcked(p.context(ctx), stream, "sensorhub", sent, drainTimeout(sent)); err != nil {
		return apiResult{}, fmt.Errorf("%w\n%s", err, p.logs.tail())
	}
	var fedRows int
	if err := e.admin.QueryRow(ctx, "SELECT count(*) FROM "+schema+".readings WHERE NOT derived AND ts >= $1", start).Scan(&fedRows); err != nil {
		return apiResult{}, err
	}
	if fedRows != sent {
		return apiResult{}, fmt.Errorf("every entry acked, but %d of %d fed rows stored", fedRows, sent)
	}
	res := apiResult{stored: stored, ingest: result{readings: sent, elapsed: time.Since(start)},
		stations: percentiles(latencies["stations"]), day: percentiles(latencies["day"]), year: percentiles(latencies["year"])}
	for _, l := range latencies {
		res.requests += len(l)
	}
	if res.ingest.p50, res.ingest.p99, err = e.liveLatency(ctx, schema, start); err != nil {
		return apiResult{}, err
	}
	return res, nil
}

// askAPI sends apiRate requests per second for d, the kinds in turn, and
// returns each kind's latencies. Any answer but 200 is an error.
func askAPI(ctx context.Context, base string, d time.Duration) (map[string][]time.Duration, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	ticker := time.NewTicker(time.Second / apiRate)
	defer ticker.Stop()
	latencies := map[string][]time.Duration{}
	for i, start := 0, time.Now(); time.Since(start) < d; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
		r := apiRequests[i%len(apiRequests)]
		t0 := time.Now()
		resp, err := client.Get(base + r.path)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", r.path, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %v", r.path, resp.StatusCode, err)
		}
		latencies[r.name] = append(latencies[r.name], time.Since(t0))
	}
	return latencies, nil
}

// latency is the median and 99th percentile of a kind of request.
type latency struct{ p50, p99 time.Duration }

func (l latency) String() string {
	return fmt.Sprintf("%s/%s", l.p50.Round(10*time.Microsecond), l.p99.Round(10*time.Microsecond))
}

// percentiles returns the median and 99th percentile of ls (nearest rank).
func percentiles(ls []time.Duration) latency {
	if len(ls) == 0 {
		return latency{}
	}
	s := slices.Sorted(slices.Values(ls))
	rank := func(p int) time.Duration { return s[(len(s)*p+99)/100-1] }
	return latency{p50: rank(50), p99: rank(99)}
}

// print writes the phase's line of the report.
func (r apiResult) print(w io.Writer) {
	fmt.Fprintf(w, "api: %d readings stored", r.stored)
	if r.stored < targetAPIStored {
		fmt.Fprintf(w, " (fewer than the target's %d)", targetAPIStored)
	}
	fmt.Fprintf(w, ", %d requests at %d/s while ingesting %.0f/s; p50/p99 stations %s (target p99 <= %s), day of readings %s (<= %s), year of aggregates %s (<= %s); ingest p99 meanwhile %s (<= %s)\n",
		r.requests, apiRate, r.ingest.rate(),
		r.stations, targetAPIStationsP99, r.day, targetAPIDayP99,
		r.year, targetAPIYearP99, r.ingest.p99.Round(100*time.Microsecond), targetP99)
}

// failures lists the targets the phase missed.
func (r apiResult) failures() []string {
	var out []string
	for _, c := range []struct {
		name        string
		got, target time.Duration
	}{
		{"api stations p99", r.stations.p99, targetAPIStationsP99},
		{"api day of readings p99", r.day.p99, targetAPIDayP99},
		{"api year of aggregates p99", r.year.p99, targetAPIYearP99},
		{"ingest p99 while the API is queried", r.ingest.p99, targetP99},
	} {
		if c.got > c.target {
			out = append(out, fmt.Sprintf("%s %s, target %s", c.name, c.got, c.target))
		}
	}
	return out
}
