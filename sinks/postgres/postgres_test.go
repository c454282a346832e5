package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// reference is the legacy message {"sensor": "temperature", "value": 14,
// "timestamp": "2024-12-01 12:00:00"} as the pipeline hands it to the sink.
var reference = sensorhub.Reading{
	Station: "default",
	Sensor:  "temperature",
	Time:    time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC),
	Value:   14,
	Unit:    "Cel",
}

// The types users pass as Config.DB.
var (
	_ postgres.DB = (*pgxpool.Pool)(nil)
	_ postgres.DB = (*pgx.Conn)(nil)
)

func newSink(t *testing.T, db postgres.DB, logger *slog.Logger) *postgres.Sink {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := postgres.New(postgres.Config{DB: db, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t *testing.T, s *postgres.Sink, readings ...sensorhub.Reading) sensorhub.WriteResult {
	t.Helper()
	res, err := s.Write(t.Context(), sensorhub.Batch{Readings: readings})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

func wantResult(t *testing.T, got sensorhub.WriteResult, stored, duplicates, conflicts int) {
	t.Helper()
	if want := (sensorhub.WriteResult{Stored: stored, Duplicates: duplicates, Conflicts: conflicts}); got != want {
		t.Fatalf("Write = %+v, want %+v", got, want)
	}
}

func countRows(t *testing.T, db *postgrestest.DB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM readings").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// storedValue returns the value stored under reference's key.
func storedValue(t *testing.T, db *postgrestest.DB) (float64, string) {
	t.Helper()
	var (
		v    float64
		unit string
	)
	err := db.Pool.QueryRow(t.Context(), "SELECT value, unit FROM readings WHERE station = $1 AND sensor = $2 AND ts = $3",
		reference.Station, reference.Sensor, reference.Time).Scan(&v, &unit)
	if err != nil {
		t.Fatal(err)
	}
	return v, unit
}

func TestNewRejectsNilDB(t *testing.T) {
	t.Parallel()
	if _, err := postgres.New(postgres.Config{}); err == nil || !strings.Contains(err.Error(), "Config.DB") {
		t.Fatalf("New(Config{}) = %v, want an error naming Config.DB", err)
	}
}

func TestWriteReference(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	wantResult(t, write(t, newSink(t, db.Pool, nil), reference), 1, 0, 0)

	var (
		station, sensor, ts, unit string
		value                     float64
		age                       time.Duration
	)
	err := db.Pool.QueryRow(t.Context(), `
		SELECT station, sensor, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), value, unit, now() - received_at
		FROM readings`).Scan(&station, &sensor, &ts, &value, &unit, &age)
	if err != nil {
		t.Fatal(err)
	}
	if station != "default" || sensor != "temperature" || ts != "2024-12-01 12:00:00.000000" || value != 14 || unit != "Cel" {
		t.Errorf("stored (%q, %q, %q, %v, %q), want (default, temperature, 2024-12-01 12:00:00.000000, 14, Cel)",
			station, sensor, ts, value, unit)
	}
	if age < 0 || age > time.Minute {
		t.Errorf("received_at is %v before now, want the time of the write", age)
	}
}

func TestWriteDuplicate(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	write(t, s, reference)
	wantResult(t, write(t, s, reference), 0, 1, 0)
	if n := countRows(t, db); n != 1 {
		t.Errorf("%d rows after writing a reading twice, want 1", n)
	}
}

func TestWriteConflict(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	var logs bytes.Buffer
	s := newSink(t, db.Pool, slog.New(slog.NewJSONHandler(&logs, nil)))
	write(t, s, reference)

	other := reference
	other.Value = 15
	wantResult(t, write(t, s, other), 0, 0, 1)
	otherUnit := reference
	otherUnit.Unit = "K"
	wantResult(t, write(t, s, otherUnit), 0, 0, 1)

	if v, unit := storedValue(t, db); v != 14 || unit != "Cel" {
		t.Errorf("stored %v %s after conflicting writes, want the first write, 14 Cel", v, unit)
	}

	var rec map[string]any
	if err := json.NewDecoder(&logs).Decode(&rec); err != nil {
		t.Fatalf("no conflict logged: %v", err)
	}
	want := map[string]any{
		"level": "WARN", "station": "default", "sensor": "temperature", "ts": "2024-12-01T12:00:00Z",
		"stored_value": 14.0, "new_value": 15.0, "stored_unit": "Cel", "new_unit": "Cel",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("conflict log %s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
}

func TestWriteSameKeyInBatch(t *testing.T) {
	t.Parallel()
	other := reference
	other.Value = 15
	for _, tc := range []struct {
		name                          string
		batch                         []sensorhub.Reading
		stored, duplicates, conflicts int
	}{
		{"same value is a duplicate", []sensorhub.Reading{reference, reference}, 1, 1, 0},
		{"other value is a conflict and the first wins", []sensorhub.Reading{reference, other}, 1, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := postgrestest.New(t)
			wantResult(t, write(t, newSink(t, db.Pool, nil), tc.batch...), tc.stored, tc.duplicates, tc.conflicts)
			if v, _ := storedValue(t, db); v != 14 {
				t.Errorf("stored %v, want the first reading's 14", v)
			}
		})
	}
}

func TestWriteMixedBatch(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	write(t, s, reference)

	conflict, fresh := reference, reference
	conflict.Value = 15
	fresh.Time = fresh.Time.Add(time.Minute)
	wantResult(t, write(t, s, conflict, fresh, reference), 1, 1, 1)
	if n := countRows(t, db); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
}

// TestWriteSubMicrosecond checks that readings differing below PostgreSQL's
// microsecond precision share a key: the sink must count them as the
// database sees them.
func TestWriteSubMicrosecond(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	r := reference
	r.Time = r.Time.Add(123456789 * time.Nanosecond)
	wantResult(t, write(t, s, r), 1, 0, 0)
	r.Time = r.Time.Add(210 * time.Nanosecond) // still .123456999
	wantResult(t, write(t, s, r), 0, 1, 0)

	var ts string
	if err := db.Pool.QueryRow(t.Context(), "SELECT to_char(ts AT TIME ZONE 'UTC', 'HH24:MI:SS.US') FROM readings").Scan(&ts); err != nil {
		t.Fatal(err)
	}
	if ts != "12:00:00.123456" {
		t.Errorf("stored ts %s, want 12:00:00.123456", ts)
	}
}

func TestWriteLargeBatch(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	batch := make([]sensorhub.Reading, 1000)
	for i := range batch {
		batch[i] = reference
		batch[i].Time = reference.Time.Add(time.Duration(i) * time.Second)
		batch[i].Value = float64(i)
	}
	wantResult(t, write(t, newSink(t, db.Pool, nil), batch...), 1000, 0, 0)
	if n := countRows(t, db); n != 1000 {
		t.Errorf("%d rows, want 1000", n)
	}
}

// TestWriteConcurrentOverlap has writers store the same readings in
// different orders at once: each reading is stored once, and the writers
// wait for each other instead of deadlocking (without the sort in Write,
// this batch size reliably ends in SQLSTATE 40P01).
func TestWriteConcurrentOverlap(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	const writers, readings = 8, 5000
	batch := make([]sensorhub.Reading, readings)
	for i := range batch {
		batch[i] = reference
		batch[i].Time = reference.Time.Add(time.Duration(i) * time.Second)
	}

	var (
		mu    sync.Mutex
		total sensorhub.WriteResult
		wg    sync.WaitGroup
	)
	for range writers {
		mine := slices.Clone(batch)
		rand.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
		wg.Go(func() {
			res, err := s.Write(t.Context(), sensorhub.Batch{Readings: mine})
			if err != nil {
				t.Errorf("Write: %v", err)
			}
			mu.Lock()
			total.Stored += res.Stored
			total.Duplicates += res.Duplicates
			total.Conflicts += res.Conflicts
			mu.Unlock()
		})
	}
	wg.Wait()
	wantResult(t, total, readings, (writers-1)*readings, 0)
}

// TestWriteSessionTimeZone checks that the session's TimeZone does not shift
// the stored instant, whatever the zone of the reading's time.Time.
func TestWriteSessionTimeZone(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"America/New_York", "Asia/Tokyo"} {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			db := postgrestest.New(t)
			cfg, err := pgxpool.ParseConfig(db.URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnConfig.RuntimeParams["TimeZone"] = zone
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)

			var session string
			if err := pool.QueryRow(t.Context(), "SHOW TimeZone").Scan(&session); err != nil {
				t.Fatal(err)
			}
			if session != zone {
				t.Fatalf("session TimeZone %s, want %s", session, zone)
			}

			india := reference
			india.Station = "india"
			india.Time = reference.Time.In(time.FixedZone("IST", 5*3600+1800))
			wantResult(t, write(t, newSink(t, pool, nil), reference, india), 2, 0, 0)

			rows, err := pool.Query(t.Context(), "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM readings")
			if err != nil {
				t.Fatal(err)
			}
			stamps, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, ts := range stamps {
				if ts != "2024-12-01 12:00:00" {
					t.Errorf("stored ts %s UTC, want 2024-12-01 12:00:00", ts)
				}
			}
		})
	}
}

func TestWriteEmptyIsNoOp(t *testing.T) {
	t.Parallel()
	s := newSink(t, unusableDB{}, nil)
	for _, batch := range [][]sensorhub.Reading{nil, {}} {
		if res, err := s.Write(t.Context(), sensorhub.Batch{Readings: batch}); err != nil || res != (sensorhub.WriteResult{}) {
			t.Errorf("Write(%#v) = %+v, %v; want a no-op", batch, res, err)
		}
	}
}

// unusableDB fails every call, to show that a call was made.
type unusableDB struct{}

func (unusableDB) Begin(context.Context) (pgx.Tx, error) { return nil, errors.New("Begin called") }
func (unusableDB) Ping(context.Context) error            { return errors.New("Ping called") }

func TestWriteUnreachableIsTransient(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1, so connecting is refused at once.
	pool, err := pgxpool.New(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := newSink(t, pool, nil)

	_, err = s.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reference}})
	if err == nil || sensorhub.IsPermanent(err) {
		t.Errorf("Write to an unreachable server = %v, want a transient error", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping of an unreachable server succeeded")
	}
}

func TestWriteWithoutMigrationsIsTransient(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	_, err := newSink(t, db.Pool, nil).Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reference}})
	if err == nil || sensorhub.IsPermanent(err) {
		t.Errorf("Write without a readings table = %v, want a transient error", err)
	}
}

func TestWriteCanceled(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newSink(t, db.Pool, nil).Write(ctx, sensorhub.Batch{Readings: []sensorhub.Reading{reference}})
	if !errors.Is(err, context.Canceled) || sensorhub.IsPermanent(err) {
		t.Errorf("Write with a canceled context = %v, want a transient context.Canceled", err)
	}
}

// TestWriteRejectedIsPermanent sends text PostgreSQL cannot store (a NUL
// byte, SQLSTATE 22021): the error is permanent and the batch is rolled back
// as a whole.
func TestWriteRejectedIsPermanent(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	bad := reference
	// In the sensor, which only the insert of readings sends (a station's
	// name goes to the table stations first).
	bad.Sensor = "nul\x00sensor"
	bad.Time = reference.Time.Add(time.Minute)
	_, err := newSink(t, db.Pool, nil).Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reference, bad}})
	if !sensorhub.IsPermanent(err) || sensorhub.ReasonOf(err) != sensorhub.ReasonDatabaseRejected {
		t.Fatalf("Write of a NUL byte = %v, want a permanent %s error", err, sensorhub.ReasonDatabaseRejected)
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "22021" {
		t.Errorf("error %v, want SQLSTATE 22021 in its chain", err)
	}
	if !strings.HasPrefix(err.Error(), "postgres: insert readings: ") {
		t.Errorf("error %q lacks its context", err)
	}
	if n := countRows(t, db); n != 0 {
		t.Errorf("%d rows after a rejected batch, want 0", n)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for code, permanent := range map[string]bool{
		"22003": true,  // numeric_value_out_of_range
		"22021": true,  // character_not_in_repertoire
		"23505": true,  // unique_violation
		"23514": true,  // check_violation
		"08006": false, // connection_failure
		"40001": false, // serialization_failure
		"40P01": false, // deadlock_detected
		"53300": false, // too_many_connections
		"57P01": false, // admin_shutdown
		"57014": false, // query_canceled
		"42P01": false, // undefined_table: migrations not run yet
		"":      false,
	} {
		err := fmt.Errorf("postgres: insert readings: %w", &pgconn.PgError{Code: code})
		got := postgres.Classify(err)
		if !errors.Is(got, err) {
			t.Errorf("Classify(%s) = %v, want it to wrap the error", code, got)
		}
		if sensorhub.IsPermanent(got) != permanent {
			t.Errorf("Classify(SQLSTATE %q) permanent = %v, want %v", code, !permanent, permanent)
		}
	}
	for _, err := range []error{nil, context.Canceled, context.DeadlineExceeded, errors.New("dial tcp: connection refused")} {
		if got := postgres.Classify(err); got != err {
			t.Errorf("Classify(%v) = %v, want it unchanged", err, got)
		}
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	if err := newSink(t, db.Pool, nil).Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestWriteBatchesReportsPerBatch(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	s := newSink(t, db.Pool, nil)
	write(t, s, reference) // already stored before the group

	fresh, conflict := reference, reference
	fresh.Station = "roof"
	conflict.Value = 15
	results, err := s.WriteBatches(t.Context(), []sensorhub.Batch{
		{Readings: []sensorhub.Reading{fresh}},           // stored
		{Readings: []sensorhub.Reading{reference}},       // duplicate of an earlier write
		{Readings: []sensorhub.Reading{fresh, conflict}}, // duplicate of the first batch, conflict with the stored row
		{}, // empty batches keep their place
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results for 4 batches", len(results))
	}
	wantResult(t, results[0], 1, 0, 0)
	wantResult(t, results[1], 0, 1, 0)
	wantResult(t, results[2], 0, 1, 1)
	wantResult(t, results[3], 0, 0, 0)
	if n := countRows(t, db); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
}
