package partition_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/partition"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

var _ partition.DB = (*pgxpool.Pool)(nil)

var quiet = slog.New(slog.DiscardHandler)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func insert(t *testing.T, db *postgrestest.DB, station string, times ...string) {
	t.Helper()
	for _, ts := range times {
		if _, err := db.Pool.Exec(t.Context(), `INSERT INTO readings (station, sensor, ts, value, unit) VALUES ($1, 'temperature', $2, 14, 'Cel')`,
			station, utc(ts)); err != nil {
			t.Fatal(err)
		}
	}
}

// placement maps each stored row, as "station ts", to the partition
// holding it.
func placement(t *testing.T, db *postgrestest.DB) map[string]string {
	t.Helper()
	rows, err := db.Pool.Query(t.Context(), `SELECT station || ' ' || to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), tableoid::regclass::text FROM readings`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, p string
		if err := rows.Scan(&k, &p); err != nil {
			t.Fatal(err)
		}
		out[k] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func names(t *testing.T, db *postgrestest.DB) []string {
	t.Helper()
	parts, err := partition.List(t.Context(), db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range parts {
		out = append(out, p.Name)
	}
	return out
}

// TestEnsureMovesRowsOutOfTheDefaultPartition checks the on-demand path:
// rows that landed in the default partition move into the partition
// created for their month, and only those.
func TestEnsureMovesRowsOutOfTheDefaultPartition(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	insert(t, db, "roof", "1985-06-01T00:00:00Z", "1985-06-30T23:59:59Z", "1985-07-01T00:00:00Z", "2024-12-01T12:00:00Z")

	created, err := partition.Ensure(ctx, db.Pool, utc("1985-06-15T00:00:00Z"), utc("1985-07-01T00:00:00Z"))
	if err != nil || !reflect.DeepEqual(created, []string{"readings_p1985_06"}) {
		t.Fatalf("Ensure(June 1985) = %v, %v; want readings_p1985_06 created", created, err)
	}
	want := map[string]string{
		"roof 1985-06-01T00:00:00Z": "readings_p1985_06",
		"roof 1985-06-30T23:59:59Z": "readings_p1985_06",
		"roof 1985-07-01T00:00:00Z": "readings_default",
		"roof 2024-12-01T12:00:00Z": "readings_default",
	}
	if got := placement(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows after Ensure: %v, want %v", got, want)
	}
	if created, err := partition.Ensure(ctx, db.Pool, utc("1985-06-01T00:00:00Z"), utc("1985-06-02T00:00:00Z")); err != nil || len(created) != 0 {
		t.Fatalf("Ensure again = %v, %v; want nothing created", created, err)
	}
	parts, err := partition.List(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	wantParts := []partition.Partition{
		{Name: "readings_p1985_06", From: utc("1985-06-01T00:00:00Z"), To: utc("1985-07-01T00:00:00Z")},
		{Name: "readings_default", Default: true},
	}
	if !reflect.DeepEqual(parts, wantParts) {
		t.Fatalf("List = %+v, want %+v", parts, wantParts)
	}
	// The natural key holds across the move: the moved reading sent again
	// is a duplicate.
	tag, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('roof', 'temperature', '1985-06-01T00:00:00Z', 14, 'Cel') ON CONFLICT DO NOTHING`)
	if err != nil || tag.RowsAffected() != 0 {
		t.Fatalf("re-sent reading: %v, %v; want a duplicate", tag, err)
	}
}

// TestSinkStoresEveryReadingOnceInItsMonth is the oracle test of the
// partitioned sink: two writers store random readings over sixty years,
// with duplicates, in random order, while two maintainers run; every
// reading is stored once, in the partition of its month, and the default
// partition ends up empty.
func TestSinkStoresEveryReadingOnceInItsMonth(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))

	months := make([]time.Time, 12)
	for i := range months {
		months[i] = time.Date(1970+rng.IntN(60), time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
	}
	var readings []sensorhub.Reading
	want := map[string]string{}
	for i := range 600 {
		m := months[rng.IntN(len(months))]
		ts := m.Add(time.Duration(rng.Int64N(int64(m.AddDate(0, 1, 0).Sub(m)))) / time.Second * time.Second)
		r := sensorhub.Reading{Station: fmt.Sprintf("st%d", i%3), Sensor: "temperature", Time: ts, Value: 14, Unit: "Cel"}
		readings = append(readings, r)
		if rng.IntN(5) == 0 {
			readings = append(readings, r) // a duplicate
		}
		want[r.Station+" "+ts.Format(time.RFC3339)] = fmt.Sprintf("readings_p%04d_%02d", m.Year(), int(m.Month()))
	}
	rng.Shuffle(len(readings), func(i, j int) { readings[i], readings[j] = readings[j], readings[i] })

	pg, err := postgres.New(postgres.Config{DB: db.Pool, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sink := partition.NewSink(pg, db.Pool, quiet)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w * 20; i < len(readings); i += 40 {
				batch := sensorhub.Batch{Readings: readings[i:min(i+20, len(readings))]}
				if _, err := sink.WriteBatches(ctx, []sensorhub.Batch{batch}); err != nil {
					t.Errorf("WriteBatches: %v", err)
					return
				}
			}
		})
	}
	for range 2 {
		m, err := partition.NewMaintainer(partition.Config{DB: db.Pool, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if _, err := m.Run(ctx, time.Now()); err != nil {
				t.Errorf("maintainer Run: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Writers that raced a creation may have left rows in the default
	// partition; the maintainer moves them.
	m, err := partition.NewMaintainer(partition.Config{DB: db.Pool, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := placement(t, db); !reflect.DeepEqual(got, want) {
		for k, p := range want {
			if got[k] != p {
				t.Errorf("reading %s is in %q, want %s", k, got[k], p)
			}
		}
		t.Fatalf("%d rows stored, want %d", len(got), len(want))
	}
}

// TestMaintainerKeepsMonthsAheadAndDropsPastTheHorizon checks a run with a
// retention: the coming months get partitions; partitions wholly older
// than the horizon go (a monthly one and one from MINVALUE, as the legacy
// partition is), one straddling it stays; rows older than the horizon
// leave the default partition, newer ones move to their month.
func TestMaintainerKeepsMonthsAheadAndDropsPastTheHorizon(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	now := utc("2030-05-20T00:00:00Z")
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE readings_before PARTITION OF readings FOR VALUES FROM (MINVALUE) TO ('2028-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	if _, err := partition.Ensure(ctx, db.Pool, utc("2029-04-01T00:00:00Z"), utc("2029-06-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	insert(t, db, "roof", "1999-01-01T00:00:00Z", "2029-04-10T00:00:00Z", "2029-05-25T00:00:00Z")
	// Into the default partition: one past the horizon, one not.
	insert(t, db, "late", "2029-03-01T00:00:00Z", "2029-12-24T00:00:00Z")

	m, err := partition.NewMaintainer(partition.Config{DB: db.Pool, Retention: 365 * 24 * time.Hour, MonthsAhead: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Run(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := partition.Report{
		Created: []string{"readings_p2030_05", "readings_p2030_06", "readings_p2029_12"},
		Dropped: []string{"readings_before", "readings_p2029_04"},
		Expired: 1,
	}
	if !reflect.DeepEqual(rep, want) {
		t.Fatalf("Run = %+v, want %+v", rep, want)
	}
	wantRows := map[string]string{
		"roof 2029-05-25T00:00:00Z": "readings_p2029_05",
		"late 2029-12-24T00:00:00Z": "readings_p2029_12",
	}
	if got := placement(t, db); !reflect.DeepEqual(got, wantRows) {
		t.Fatalf("rows after Run: %v, want %v", got, wantRows)
	}
	if rep, err := m.Run(ctx, now); err != nil || len(rep.Created)+len(rep.Dropped) != 0 || rep.Expired != 0 {
		t.Fatalf("second Run = %+v, %v; want nothing left to do", rep, err)
	}
}

// TestDropGivesUpWhileTheTableIsBusy checks that retention never queues
// behind a long reader (and so never blocks the writers queued behind it):
// the drop fails after the lock timeout and succeeds at the next run.
func TestDropGivesUpWhileTheTableIsBusy(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	if _, err := partition.Ensure(ctx, db.Pool, utc("2000-01-01T00:00:00Z"), utc("2000-02-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	reader, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reader.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := reader.Exec(ctx, `SELECT count(*) FROM readings`); err != nil {
		t.Fatal(err)
	}

	m, err := partition.NewMaintainer(partition.Config{DB: db.Pool, Retention: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Run(ctx, time.Now())
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "55P03" || len(rep.Dropped) != 0 {
		t.Fatalf("Run while a reader holds readings = %+v, %v; want a lock timeout (55P03) and nothing dropped", rep, err)
	}
	if err := reader.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err = m.Run(ctx, time.Now())
	if err != nil || !reflect.DeepEqual(rep.Dropped, []string{"readings_p2000_01"}) {
		t.Fatalf("Run after the reader ended = %+v, %v; want readings_p2000_01 dropped", rep, err)
	}
	if got := names(t, db); strings.Contains(strings.Join(got, " "), "p2000") {
		t.Fatalf("partitions after the drop: %v", got)
	}
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	t.Parallel()
	err := partition.Config{Retention: -1, Interval: -1, MonthsAhead: -1}.Validate()
	for _, want := range []string{"Config.DB", "Config.Retention", "Config.Interval", "Config.MonthsAhead"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %s", err, want)
		}
	}
}

// TestMaintainerStartsAndStops checks the background loop: the current
// month's partition appears soon after Start, and Stop ends it.
func TestMaintainerStartsAndStops(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	m, err := partition.NewMaintainer(partition.Config{DB: db.Pool, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	want := fmt.Sprintf("readings_p%s", time.Now().UTC().Format("2006_01"))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(strings.Join(names(t, db), " "), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s 30 s after Start: %v (last error %v)", want, names(t, db), m.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
