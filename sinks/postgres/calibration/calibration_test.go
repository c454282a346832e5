package calibration_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// t0 is the first reading's time of every test.
var t0 = time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)

// kit is one test's schema with a sink and a store over it.
type kit struct {
	db    *postgrestest.DB
	sink  *postgres.Sink
	store *calibration.Store
}

func newKit(t *testing.T) *kit {
	t.Helper()
	db := postgrestest.New(t)
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := calibration.New(calibration.Config{DB: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	return &kit{db: db, sink: sink, store: store}
}

// reading is a temperature of station roof, minutes after t0.
func reading(minutes int, value float64) sensorhub.Reading {
	return sensorhub.Reading{Station: "roof", Sensor: "temperature", Time: t0.Add(time.Duration(minutes) * time.Minute), Value: value, Unit: "Cel"}
}

func (k *kit) write(t *testing.T, readings ...sensorhub.Reading) sensorhub.WriteResult {
	t.Helper()
	res, err := k.sink.Write(t.Context(), sensorhub.Batch{Readings: readings})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// row is a stored reading's value and raw_value ("null" when none).
type row struct {
	value float64
	raw   string
}

// rows returns roof's temperatures by minutes after t0.
func (k *kit) rows(t *testing.T) map[int]row {
	t.Helper()
	pgRows, err := k.db.Pool.Query(t.Context(),
		`SELECT ts, value, coalesce(raw_value::text, 'null') FROM readings WHERE station = 'roof' AND sensor = 'temperature'`)
	if err != nil {
		t.Fatal(err)
	}
	defer pgRows.Close()
	out := make(map[int]row)
	for pgRows.Next() {
		var (
			ts time.Time
			r  row
		)
		if err := pgRows.Scan(&ts, &r.value, &r.raw); err != nil {
			t.Fatal(err)
		}
		out[int(ts.Sub(t0)/time.Minute)] = r
	}
	if err := pgRows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantRows(t *testing.T, got, want map[int]row) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored (minute: {value raw_value}) = %v, want %v", got, want)
	}
}

func (k *kit) add(t *testing.T, c calibration.Calibration) (calibration.Calibration, calibration.Applied) {
	t.Helper()
	c.Station, c.Sensor = "roof", "temperature"
	added, applied, err := k.store.Add(t.Context(), c)
	if err != nil {
		t.Fatalf("Add(%+v): %v", c, err)
	}
	return added, applied
}

// appliedEvents returns the payloads of the calibration.applied events in
// the outbox, in order.
func (k *kit) appliedEvents(t *testing.T) []calibration.Applied {
	t.Helper()
	events, err := outbox.List(t.Context(), k.db.Pool, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []calibration.Applied
	for _, e := range events {
		if e.Type != calibration.EventApplied {
			continue
		}
		var a calibration.Applied
		if err := e.Decode(&a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestSinkStoresCalibratedValues checks DESIGN.md §11 on the way in: a
// reading inside a calibration's period is stored as raw × scale + offset
// with raw_value holding the value before; one outside it, also at the
// period's exclusive end, is stored as sent with raw_value null. A
// reading sent again is a duplicate, not a conflict, and readings.stored
// lists the stored values.
func TestSinkStoresCalibratedValues(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	k.add(t, calibration.Calibration{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute), Scale: 1.5, Offset: -2})

	in := []sensorhub.Reading{reading(0, 10), reading(1, 10), reading(2, 20.5), reading(3, 10)}
	if res := k.write(t, in...); res.Stored != 4 {
		t.Fatalf("Write = %+v, want 4 stored", res)
	}
	wantRows(t, k.rows(t), map[int]row{0: {10, "null"}, 1: {13, "10"}, 2: {28.75, "20.5"}, 3: {10, "null"}})

	if res := k.write(t, in...); res.Duplicates != 4 || res.Conflicts != 0 {
		t.Fatalf("Write again = %+v, want 4 duplicates and no conflict", res)
	}
	events, err := outbox.List(t.Context(), k.db.Pool, 10)
	if err != nil {
		t.Fatal(err)
	}
	var stored sensorhub.ReadingsStored
	if len(events) != 1 || events[0].Decode(&stored) != nil || len(stored.Readings) != 4 ||
		stored.Readings[1].Value != 13 || stored.Readings[2].Value != 28.75 || stored.Readings[3].Value != 10 {
		t.Fatalf("outbox = %+v, want one readings.stored listing the calibrated values", events)
	}
}

// TestAddReappliesToAPastPeriodIdempotently checks that a calibration added
// for a period already stored re-applies to exactly that period's readings,
// from raw_value: ending it restores the raw values, and adding it again
// gives the very values of the first time (not calibrated twice). Each
// change that moved values is announced with calibration.applied.
func TestAddReappliesToAPastPeriodIdempotently(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	k.write(t, reading(0, 10), reading(1, 11), reading(2, 12), reading(3, 13))
	calibrated := map[int]row{0: {10, "null"}, 1: {21, "11"}, 2: {23, "12"}, 3: {25, "13"}}

	from := t0.Add(time.Minute)
	first, applied := k.add(t, calibration.Calibration{From: from, Scale: 2, Offset: -1, Note: "field check"})
	if applied.Readings != 3 || applied.CalibrationID != first.ID || !applied.From.Equal(from) || applied.To != nil {
		t.Fatalf("Add applied %+v, want 3 readings from %s on, open", applied, from)
	}
	wantRows(t, k.rows(t), calibrated)

	// Ending it where it began is refused; ending it before every reading
	// of its period gives them back their raw values.
	if _, err := k.store.End(t.Context(), first.ID, from); !errors.Is(err, calibration.ErrInvalid) {
		t.Fatalf("End at the start = %v, want ErrInvalid", err)
	}
	applied, err := k.store.End(t.Context(), first.ID, from.Add(time.Second))
	if err != nil || applied.Readings != 2 {
		t.Fatalf("End = %+v, %v; want 2 readings restored", applied, err)
	}
	wantRows(t, k.rows(t), map[int]row{0: {10, "null"}, 1: {21, "11"}, 2: {12, "null"}, 3: {13, "null"}})
	if applied, err := k.store.End(t.Context(), first.ID, from.Add(time.Second)); err != nil || applied.Readings != 0 {
		t.Fatalf("End again = %+v, %v; want nothing changed", applied, err)
	}

	// The same calibration again, after the first: the same values as the
	// first time.
	k.add(t, calibration.Calibration{From: from.Add(time.Second), Scale: 2, Offset: -1})
	wantRows(t, k.rows(t), calibrated)

	// A later, open calibration after closing the second: applies to what
	// is stored and to what comes.
	list, err := k.store.List(t.Context(), "roof", "temperature")
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v; want both calibrations", list, err)
	}
	if _, err := k.store.End(t.Context(), list[1].ID, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	k.add(t, calibration.Calibration{From: t0.Add(3 * time.Minute), Scale: 1, Offset: 0.5})
	k.write(t, reading(4, 14))
	wantRows(t, k.rows(t), map[int]row{0: {10, "null"}, 1: {21, "11"}, 2: {23, "12"}, 3: {13.5, "13"}, 4: {14.5, "14"}})

	var counts []int64
	for _, a := range k.appliedEvents(t) {
		if a.Station != "roof" || a.Sensor != "temperature" {
			t.Fatalf("event %+v, want roof/temperature", a)
		}
		counts = append(counts, a.Readings)
	}
	// add 3, end 2, (end again: no event), add 2, end 1, add 1.
	if fmt.Sprint(counts) != "[3 2 2 1 1]" {
		t.Fatalf("calibration.applied readings_changed = %v, want [3 2 2 1 1]", counts)
	}
}

// TestAddRefusesOverlap checks that periods of one (station, sensor) never
// overlap, whichever is open, and that refusing writes nothing; other
// sensors and stations, and touching periods, are fine.
func TestAddRefusesOverlap(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	k.add(t, calibration.Calibration{From: at(10), To: at(20), Scale: 1, Offset: 1})
	k.add(t, calibration.Calibration{From: at(30), Scale: 1, Offset: 2})

	for name, c := range map[string]calibration.Calibration{
		"inside":                   {From: at(12), To: at(13)},
		"around":                   {From: at(5), To: at(25)},
		"over the start":           {From: at(5), To: at(11)},
		"over the end":             {From: at(19), To: at(21)},
		"from the beginning":       {To: at(11)},
		"everything":               {},
		"into the open one":        {From: at(25), To: at(31)},
		"after the open one began": {From: at(40)},
	} {
		c.Station, c.Sensor, c.Scale = "roof", "temperature", 1
		if _, _, err := k.store.Add(t.Context(), c); !errors.Is(err, calibration.ErrOverlap) || !strings.Contains(err.Error(), "#") {
			t.Errorf("%s: Add = %v, want ErrOverlap naming the calibration", name, err)
		}
	}
	if list, _ := k.store.List(t.Context(), "", ""); len(list) != 2 {
		t.Fatalf("%d calibrations after refusals, want 2", len(list))
	}

	k.add(t, calibration.Calibration{To: at(10), Scale: 1})               // touches the first
	k.add(t, calibration.Calibration{From: at(20), To: at(30), Scale: 1}) // fills the gap
	for _, c := range []calibration.Calibration{
		{Station: "roof", Sensor: "humidity", Scale: 1},
		{Station: "garden", Sensor: "temperature", Scale: 1},
	} {
		if _, _, err := k.store.Add(t.Context(), c); err != nil {
			t.Fatalf("Add(%+v) = %v, want it stored", c, err)
		}
	}
}

// TestAddRefusesInvalid checks that bad values are refused, each named, in
// one error, and that nothing is written.
func TestAddRefusesInvalid(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	for _, c := range []struct {
		name  string
		cal   calibration.Calibration
		wants []string
	}{
		{"scale 0", calibration.Calibration{Station: "roof", Sensor: "temperature"}, []string{"scale 0"}},
		{"scale NaN", calibration.Calibration{Station: "roof", Sensor: "temperature", Scale: math.NaN()}, []string{"scale NaN"}},
		{"offset infinite", calibration.Calibration{Station: "roof", Sensor: "temperature", Scale: 1, Offset: math.Inf(1)}, []string{"offset +Inf"}},
		{"empty period", calibration.Calibration{Station: "roof", Sensor: "temperature", Scale: 1, From: t0, To: t0}, []string{"is empty"}},
		{"reversed period", calibration.Calibration{Station: "roof", Sensor: "temperature", Scale: 1, From: t0, To: t0.Add(-time.Hour)}, []string{"is empty"}},
		{"every problem at once", calibration.Calibration{Station: "bad station", Sensor: "Temp", Scale: 0, Offset: math.NaN(), From: t0, To: t0},
			[]string{"station", "sensor", "scale 0", "offset NaN", "is empty"}},
	} {
		_, _, err := k.store.Add(t.Context(), c.cal)
		if !errors.Is(err, calibration.ErrInvalid) {
			t.Errorf("%s: Add = %v, want ErrInvalid", c.name, err)
			continue
		}
		for _, w := range c.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", c.name, err, w)
			}
		}
	}
	if list, _ := k.store.List(t.Context(), "", ""); len(list) != 0 {
		t.Fatalf("%d calibrations after refusals, want none", len(list))
	}
	if _, err := k.store.End(t.Context(), 12345, t0); !errors.Is(err, calibration.ErrNotFound) {
		t.Fatalf("End of an unknown id = %v, want ErrNotFound", err)
	}
}

// heldDB is a postgres.DB whose transactions, once they have written,
// wait for release before they commit.
type heldDB struct {
	*pgxpool.Pool
	written chan struct{} // receives when a transaction waits to commit
	release chan struct{} // closed to let them commit
}

func (d heldDB) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := d.Pool.Begin(ctx)
	return heldTx{Tx: tx, db: d}, err
}

type heldTx struct {
	pgx.Tx
	db heldDB
}

func (tx heldTx) Commit(ctx context.Context) error {
	tx.db.written <- struct{}{}
	<-tx.db.release
	return tx.Tx.Commit(ctx)
}

// TestAddRacingAnInsertCalibratesIt adds a calibration while the sink has
// inserted a reading of its period but not committed it: Add cannot see
// that row yet, and the insert did not see the calibration. Add must wait
// for the insert to commit (the station's lock) and then calibrate it; it
// would otherwise commit first and leave the reading raw for good.
func TestAddRacingAnInsertCalibratesIt(t *testing.T) {
	t.Parallel()
	k := newKit(t)
	held := heldDB{Pool: k.db.Pool, written: make(chan struct{}), release: make(chan struct{})}
	sink, err := postgres.New(postgres.Config{DB: held, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() {
		_, err := sink.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{reading(0, 10)}})
		written <- err
	}()
	<-held.written

	added := make(chan error, 1)
	go func() {
		_, _, err := k.store.Add(t.Context(), calibration.Calibration{Station: "roof", Sensor: "temperature", Scale: 2, Offset: 1})
		added <- err
	}()
	// Add either waits for the station's lock or, wrongly, gets done.
	deadline := time.Now().Add(30 * time.Second)
	for waiting := 0; waiting == 0; {
		select {
		case err := <-added:
			added <- err
			waiting = 1
			continue
		default:
		}
		if err := k.db.Pool.QueryRow(t.Context(),
			`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Add neither finished nor waits for a lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(held.release)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	wantRows(t, k.rows(t), map[int]row{0: {21, "10"}})
}
