package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/sensorhub/sensorhub/migrations"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// newMigrator returns a Migrator over its own database/sql connection pool,
// as a separate process would have.
func newMigrator(t *testing.T, dsn string) *migrations.Migrator {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	m, err := migrations.New(migrations.Config{DB: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewRejectsNilDB(t *testing.T) {
	t.Parallel()
	if _, err := migrations.New(migrations.Config{}); err == nil || !strings.Contains(err.Error(), "Config.DB") {
		t.Fatalf("New(Config{}) = %v, want an error naming Config.DB", err)
	}
}

func TestUpStatusDown(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	m := newMigrator(t, db.URL)
	ctx := t.Context()

	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []migrations.Status{{Version: 1, Name: "0001_readings.sql"}, {Version: 2, Name: "0002_outbox.sql"}}; len(st) != migrationCount(t) || !reflect.DeepEqual(st[:2], want) {
		t.Fatalf("Status before Up = %+v, want %+v first and all %d pending", st, want, migrationCount(t))
	}

	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(st) || applied[0].Version != 1 || applied[0].Name != "0001_readings.sql" || applied[0].Duration <= 0 ||
		applied[1].Name != "0002_outbox.sql" {
		t.Fatalf("Up = %+v, want every migration applied in order with its duration", applied)
	}
	checkReadingsTable(t, db)

	st, err = m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Applied || time.Since(s.AppliedAt) > time.Minute {
			t.Fatalf("Status after Up = %+v, want every version applied just now", st)
		}
	}

	if applied, err := m.Up(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("second Up = %+v, %v; want nothing applied", applied, err)
	}

	exists := func(table string) bool {
		var ok bool
		if err := db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	hasColumn := func(table, column string) bool {
		var ok bool
		if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2)`, table, column).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// Down goes one step at a time, newest first.
	for i := len(st) - 1; i >= 0; i-- {
		down, err := m.Down(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if down.Version != st[i].Version || down.Name != st[i].Name {
			t.Fatalf("Down = %+v, want %s rolled back", down, st[i].Name)
		}
		if down.Version == 3 && (exists("stations") || exists("calibrations") || !exists("readings")) {
			t.Fatal("Down of 0003 must drop stations and calibrations and only them")
		}
		if down.Version == 7 && (exists("qc_settings") || exists("qc_manual_flags") || !exists("readings_5m")) {
			t.Fatal("Down of 0007 must drop the QC tables and only them")
		}
		if down.Version == 9 && (exists("rollup_invalidations") || exists("rollup_day_rebuilds") || exists("rollup_settings") || !exists("readings_5m")) {
			t.Fatal("Down of 0009 must drop the invalidation log and only it")
		}
		if down.Version == 12 && (exists("reading_series") || !exists("readings_default")) {
			t.Fatal("Down of 0012 must drop reading_series and only it")
		}
		if down.Version == 11 && (hasColumn("readings_5m", "through") || hasColumn("rollup_invalidations", "changed_from") || !exists("rollup_invalidations")) {
			t.Fatal("Down of 0011 must drop through and changed_from and only them")
		}
		if down.Version == 17 && !hasColumn("rollup_invalidations", "claimed") {
			t.Fatal("Down of 0017 must give rollup_invalidations its claimed column back")
		}
		if down.Version == 13 && (exists("rain_rate_totals") || !exists("readings")) {
			t.Fatal("Down of 0013 must drop rain_rate_totals and only it")
		}
		if down.Version == 10 && (exists("readings_default") || !exists("readings")) {
			t.Fatal("Down of 0010 must leave readings one plain table")
		}
		if down.Version == 6 && (exists("readings_5m") || exists("readings_1h") || exists("readings_1d") || !exists("sensor_status")) {
			t.Fatal("Down of 0006 must drop the rollup tables and only them")
		}
		if down.Version == 5 && (exists("sensor_status") || !exists(`"watermill_sensorhub_outbox"`)) {
			t.Fatal("Down of 0005 must drop sensor_status and only it")
		}
		if down.Version == 2 && (exists(`"watermill_sensorhub_outbox"`) || exists(`"watermill_offsets_sensorhub_outbox"`) || !exists("readings")) {
			t.Fatal("Down of 0002 must drop the outbox tables and only them")
		}
	}
	if exists("readings") {
		t.Fatal("readings still exists after Down")
	}
	if _, err := m.Down(ctx); !errors.Is(err, migrations.ErrNothingApplied) {
		t.Fatalf("Down with nothing applied = %v, want ErrNothingApplied", err)
	}

	if applied, err := m.Up(ctx); err != nil || len(applied) != len(st) {
		t.Fatalf("Up after Down = %+v, %v; want every version applied again", applied, err)
	}
	checkReadingsTable(t, db)
}

// checkReadingsTable checks the storage contract of DESIGN.md §3.
func checkReadingsTable(t *testing.T, db *postgrestest.DB) {
	t.Helper()
	type column struct{ name, typ, nullable, def string }
	rows, err := db.Pool.Query(t.Context(), `
		SELECT column_name, data_type, is_nullable, coalesce(column_default, '')
		FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'readings'
		ORDER BY ordinal_position`, db.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var got []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.nullable, &c.def); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []column{
		{"station", "text", "NO", ""},
		{"sensor", "text", "NO", ""},
		{"ts", "timestamp with time zone", "NO", ""},
		{"value", "double precision", "NO", ""},
		{"unit", "text", "NO", ""},
		{"received_at", "timestamp with time zone", "NO", "now()"},
		{"raw_value", "double precision", "YES", ""},
		{"qc_flag", "smallint", "NO", "2"},
		{"qc_tests", "ARRAY", "NO", "'{}'::text[]"},
		{"derived", "boolean", "NO", "false"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readings columns = %+v, want %+v", got, want)
	}

	var key []string
	err = db.Pool.QueryRow(t.Context(), `
		SELECT array_agg(a.attname ORDER BY k.ord)
		FROM pg_index i
		CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1::regclass AND i.indisprimary`, db.Schema+".readings").Scan(&key)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"station", "sensor", "ts"}; !reflect.DeepEqual(key, want) {
		t.Errorf("readings primary key = %v, want %v", key, want)
	}
}

func TestConcurrentUp(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)

	const processes = 8
	results := make([][]migrations.Result, processes)
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i := range processes {
		m := newMigrator(t, db.URL)
		wg.Go(func() { results[i], errs[i] = m.Up(t.Context()) })
	}
	wg.Wait()

	applied := 0
	for i := range processes {
		if errs[i] != nil {
			t.Errorf("Up in process %d: %v", i, errs[i])
		}
		applied += len(results[i])
	}
	if applied != migrationCount(t) {
		t.Errorf("%d migrations applied in all, want each once (%d): %+v", applied, migrationCount(t), results)
	}
	checkReadingsTable(t, db)
}

// TestLockIsPerSchema holds the migrations lock of one schema and checks
// that it blocks Up there and only there. It computes the lock ID on its
// own: the ID must stay the same across releases, or two versions migrating
// at once would not exclude each other.
func TestLockIsPerSchema(t *testing.T) {
	t.Parallel()
	locked, free := postgrestest.NewEmpty(t), postgrestest.NewEmpty(t)
	ctx := t.Context()

	h := fnv.New64a()
	h.Write([]byte("sensorhub:migrations:" + locked.Schema))
	conn, err := locked.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(h.Sum64())); err != nil {
		t.Fatal(err)
	}

	if _, err := newMigrator(t, free.URL).Up(ctx); err != nil {
		t.Fatalf("Up on another schema: %v", err)
	}

	waiting, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if applied, err := newMigrator(t, locked.URL).Up(waiting); err == nil {
		t.Fatalf("Up while another process holds the lock = %+v, want it to wait until the deadline", applied)
	}

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", int64(h.Sum64())); err != nil {
		t.Fatal(err)
	}
	if applied, err := newMigrator(t, locked.URL).Up(ctx); err != nil || len(applied) != migrationCount(t) {
		t.Fatalf("Up after the lock was released = %+v, %v; want every version applied", applied, err)
	}
}

// migrationCount is the number of embedded migrations.
func migrationCount(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

func TestUpWithoutSchema(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	dsn := strings.Replace(db.URL, db.Schema, db.Schema+"_missing", 1)
	_, err := newMigrator(t, dsn).Up(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no current schema") {
		t.Fatalf("Up with a search_path naming no schema = %v, want a no-current-schema error", err)
	}
}

// TestCheckNamesPendingMigrations checks the start-up check: a schema never
// migrated, or missing its newest migration, is refused with an error that
// names what is pending; a migrated one passes. Up from a pgx pool is the
// one call that migrates it.
func TestCheckNamesPendingMigrations(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	ctx := t.Context()

	err := migrations.Check(ctx, db.Pool)
	if !errors.Is(err, migrations.ErrNotMigrated) || !strings.Contains(err.Error(), "0001_readings.sql, 0002_outbox.sql") {
		t.Fatalf("Check on an empty schema = %v, want ErrNotMigrated naming every migration", err)
	}
	var tables int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, db.Schema).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("Check created %d tables (%v), want none", tables, err)
	}

	applied, err := migrations.Up(ctx, db.Pool, slog.New(slog.DiscardHandler))
	if err != nil || len(applied) != migrationCount(t) {
		t.Fatalf("Up = %+v, %v; want every migration applied", applied, err)
	}
	if err := migrations.Check(ctx, db.Pool); err != nil {
		t.Fatalf("Check after Up = %v", err)
	}
	if err := db.Pool.Ping(ctx); err != nil {
		t.Fatalf("Up closed the pool: %v", err)
	}

	if _, err := newMigrator(t, db.URL).Down(ctx); err != nil {
		t.Fatal(err)
	}
	err = migrations.Check(ctx, db.Pool)
	newest := applied[len(applied)-1].Name
	if !errors.Is(err, migrations.ErrNotMigrated) || !strings.Contains(err.Error(), "("+newest+")") {
		t.Fatalf("Check after Down = %v, want ErrNotMigrated naming %s only", err, newest)
	}
}

// TestStationsMigrationCreatesKnownStations checks the upgrade to 0003:
// the stations of readings stored before it exist after it, without a
// zone, so they keep following SENSORHUB_TIMEZONE.
func TestStationsMigrationCreatesKnownStations(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	m := newMigrator(t, db.URL)
	// Roll back the newer migrations, then 0003 itself.
	for down := (migrations.Result{}); down.Name != "0003_stations.sql"; {
		var err error
		if down, err = m.Down(ctx); err != nil || down.Name == "" {
			t.Fatalf("Down = %+v, %v; want to reach 0003_stations.sql", down, err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit) VALUES
		('roof', 'temperature', '2024-12-01T12:00:00Z', 14, 'Cel'),
		('roof', 'humidity', '2024-12-01T12:00:00Z', 55, '%RH'),
		('garden', 'temperature', '2024-12-01T12:00:00Z', 9, 'Cel')`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := db.Pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM stations WHERE timezone IS NULL`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"garden", "roof"}) {
		t.Fatalf("stations after the upgrade = %v, want garden and roof without a zone", ids)
	}
}

// downThrough rolls back the migrations after name, then name.
func downThrough(t *testing.T, m *migrations.Migrator, name string) {
	t.Helper()
	for down := (migrations.Result{}); down.Name != name; {
		var err error
		if down, err = m.Down(t.Context()); err != nil || down.Name == "" {
			t.Fatalf("Down = %+v, %v; want to reach %s", down, err, name)
		}
	}
}

// TestPartitionMigrationKeepsAnExistingTable checks the upgrade to 0010 of
// a table that holds rows: they stay, with every column of 0001–0006, in
// the partition readings_legacy; the natural key still dedupes; and what
// belonged to the old table follows the new parent: a statement-level
// trigger with a transition table (as rollups add), a view, an index, a
// grant. Then 0010's Down brings back one plain table with every row.
func TestPartitionMigrationKeepsAnExistingTable(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	m := newMigrator(t, db.URL)
	downThrough(t, m, "0010_partition_readings.sql")
	exec := func(sql string) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO readings (station, sensor, ts, value, unit, raw_value, qc_flag, qc_tests, derived) VALUES
		('roof', 'temperature', '1985-06-01T12:00:00Z', 14, 'Cel', 13.5, 3, '{spike}', false),
		('roof', 'dew_point', '2024-12-01T12:00:00Z', 9.5, 'Cel', NULL, 2, '{}', true)`)
	exec(`CREATE TABLE seen (n bigint)`)
	exec(`CREATE FUNCTION count_new() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO seen SELECT count(*) FROM new_rows; RETURN NULL; END $$`)
	exec(`CREATE TRIGGER readings_count AFTER INSERT ON readings REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_new()`)
	exec(`CREATE VIEW roof_readings AS SELECT station, ts, value FROM readings WHERE station = 'roof'`)
	exec(`CREATE INDEX readings_by_arrival ON readings (received_at)`)
	exec(`GRANT SELECT ON readings TO PUBLIC`)

	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	checkReadingsTable(t, db)
	query := func(sql string, dest ...any) {
		t.Helper()
		if err := db.Pool.QueryRow(ctx, sql).Scan(dest...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var kind string
	query(`SELECT relkind::text FROM pg_class WHERE oid = 'readings'::regclass`, &kind)
	if kind != "p" {
		t.Fatalf("readings has relkind %q after 0010, want p (partitioned)", kind)
	}
	var parts []string
	query(`SELECT array_agg(inhrelid::regclass::text ORDER BY inhrelid::regclass::text) FROM pg_inherits WHERE inhparent = 'readings'::regclass`, &parts)
	if want := []string{"readings_default", "readings_legacy"}; !reflect.DeepEqual(parts, want) {
		t.Fatalf("partitions = %v, want %v", parts, want)
	}
	var rows []string
	query(`SELECT array_agg(format('%s %s %s %s %s %s %s %s %s', station, sensor, ts AT TIME ZONE 'UTC', value, unit, raw_value, qc_flag, qc_tests, derived) ORDER BY ts)
		FROM readings_legacy`, &rows)
	want := []string{
		"roof temperature 1985-06-01 12:00:00 14 Cel 13.5 3 {spike} f",
		"roof dew_point 2024-12-01 12:00:00 9.5 Cel  2 {} t",
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows after 0010 = %q, want %q", rows, want)
	}

	// A later reading goes to the default partition (no month partition
	// yet), a re-sent one is still a duplicate, and the trigger fires once
	// per statement on the parent.
	tag, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit) VALUES
		('roof', 'temperature', '1985-06-01T12:00:00Z', 14, 'Cel'),
		('roof', 'temperature', '2099-01-01T00:00:00Z', 15, 'Cel') ON CONFLICT DO NOTHING`)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("insert after 0010 = %v, %v; want the new reading stored and the re-sent one dropped", tag, err)
	}
	var inDefault, seen, inView int
	query(`SELECT count(*) FROM readings_default`, &inDefault)
	query(`SELECT coalesce(sum(n), 0) FROM seen`, &seen)
	query(`SELECT count(*) FROM roof_readings`, &inView)
	if inDefault != 1 || seen != 1 || inView != 3 {
		t.Fatalf("after an insert: %d rows in the default partition, trigger saw %d, view shows %d; want 1, 1, 3", inDefault, seen, inView)
	}
	var index string
	query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'readings' AND indexname = 'readings_by_arrival'`, &index)
	if !strings.Contains(index, "(received_at)") {
		t.Fatalf("index readings_by_arrival on the parent = %q", index)
	}
	var public bool
	query(`SELECT has_table_privilege('public', 'readings', 'SELECT')`, &public)
	if !public {
		t.Fatal("the grant to PUBLIC did not follow the table")
	}

	downThrough(t, m, "0010_partition_readings.sql")
	query(`SELECT relkind::text FROM pg_class WHERE oid = 'readings'::regclass`, &kind)
	var count int
	query(`SELECT count(*) FROM roof_readings`, &count)
	if kind != "r" || count != 3 {
		t.Fatalf("after Down: relkind %q and %d rows in the view, want a plain table (r) with 3", kind, count)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("Up again: %v", err)
	}
}

// TestPartitionMigrationOfAnEmptyTable checks a fresh install: no legacy
// partition, only the default one.
func TestPartitionMigrationOfAnEmptyTable(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	var parts []string
	if err := db.Pool.QueryRow(t.Context(), `SELECT array_agg(inhrelid::regclass::text) FROM pg_inherits WHERE inhparent = 'readings'::regclass`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if want := []string{"readings_default"}; !reflect.DeepEqual(parts, want) {
		t.Fatalf("partitions of a fresh install = %v, want %v", parts, want)
	}
}

// TestSeriesMigrationRegistersStoredReadings checks the upgrade to 0012:
// every series stored before it is in reading_series with the UTC month of
// its newest reading, whichever partition holds it; and then its triggers
// keep the table: a new series or a later month is recorded, an earlier
// month is not, and an UPDATE that moves a reading to another series or
// month counts as a reading there, across partitions too.
func TestSeriesMigrationRegistersStoredReadings(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	m := newMigrator(t, db.URL)
	downThrough(t, m, "0012_reading_series.sql")
	exec := func(sql string) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE readings_p2024_11 PARTITION OF readings FOR VALUES FROM ('2024-11-01T00:00:00Z') TO ('2024-12-01T00:00:00Z')`)
	exec(`CREATE TABLE readings_p2024_12 PARTITION OF readings FOR VALUES FROM ('2024-12-01T00:00:00Z') TO ('2025-01-01T00:00:00Z')`)
	exec(`INSERT INTO readings (station, sensor, ts, value, unit) VALUES
		('roof', 'temperature', '2024-11-30T23:00:00Z', 14, 'Cel'),
		('roof', 'temperature', '2024-12-31T23:59:59Z', 15, 'Cel'),
		('roof', 'humidity', '2024-11-02T00:00:00Z', 55, '%RH'),
		('garden', 'temperature', '2030-06-15T12:00:00Z', 9, 'Cel')`) // the default partition
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	series := func() []string {
		t.Helper()
		var got []string
		if err := db.Pool.QueryRow(ctx, `SELECT array_agg(format('%s %s %s', station, sensor, to_char(latest_month AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))
			ORDER BY station, sensor) FROM reading_series`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := series(), []string{"garden temperature 2030-06-01 00:00", "roof humidity 2024-11-01 00:00", "roof temperature 2024-12-01 00:00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("reading_series after the upgrade = %q, want %q", got, want)
	}

	// Months are UTC months whatever the writer's zone: 2024-12-01 00:30
	// UTC is still November in New York.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, sql := range []string{
		`SET LOCAL TimeZone = 'America/New_York'`,
		`INSERT INTO readings (station, sensor, ts, value, unit) VALUES
		 ('roof', 'temperature', '2024-11-15T00:00:00Z', 13, 'Cel'),
		 ('roof', 'humidity', '2024-12-01T00:30:00Z', 56, '%RH'),
		 ('shed', 'battery', '2024-11-05T00:00:00Z', 3.7, 'V')`,
		`UPDATE readings SET qc_flag = 1`,
		`UPDATE readings SET sensor = 'dew_point', ts = '2024-12-24T00:00:00Z' WHERE station = 'shed'`,
	} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := series(), []string{
		"garden temperature 2030-06-01 00:00", "roof humidity 2024-12-01 00:00", "roof temperature 2024-12-01 00:00",
		"shed battery 2024-11-01 00:00", "shed dew_point 2024-12-01 00:00",
	}; !reflect.DeepEqual(got, want) {
		t.Fatalf("reading_series after new readings and updates = %q, want %q", got, want)
	}
}

// TestSeriesUpdateTriggerNeverNestsLoops checks the reading_series trigger
// of an UPDATE (migration 0016) in the plan PL/pgSQL caches for a session:
// after a few one-row UPDATEs, as a calibration or a flag set by hand
// makes, an UPDATE of 2,000 rows, as QC makes, must not compare every new
// row with every old one. auto_explain reports the trigger's plan.
func TestSeriesUpdateTriggerNeverNestsLoops(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var plans []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "INSERT INTO reading_series") {
			mu.Lock()
			plans = append(plans, n.Message)
			mu.Unlock()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		`INSERT INTO readings (station, sensor, ts, value, unit)
		 SELECT 'roof', 'temperature', '2024-12-01T00:00:00Z'::timestamptz + i * interval '1 minute', i, 'Cel'
		 FROM generate_series(1, 2000) AS i`,
		`LOAD 'auto_explain'`,
		`SET auto_explain.log_min_duration = 0`,
		`SET auto_explain.log_nested_statements = on`,
		`SET auto_explain.log_level = notice`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for i := range 6 {
		if _, err := conn.Exec(ctx, `UPDATE readings SET qc_flag = 1 WHERE ts = '2024-12-01T00:00:00Z'::timestamptz + $1 * interval '1 minute'`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	plans = nil
	mu.Unlock()
	if _, err := conn.Exec(ctx, `UPDATE readings SET qc_flag = 3`); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(plans) != 1 {
		t.Fatalf("auto_explain reported %d plans of the trigger's statement for one UPDATE, want 1", len(plans))
	}
	if strings.Contains(plans[0], "Nested Loop") {
		t.Errorf("the trigger's statement ran a nested loop over its transition tables:\n%s", plans[0])
	}
}
