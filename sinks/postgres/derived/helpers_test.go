package derived_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// base is the device time the tests' readings start at.
var base = time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)

// at returns base plus seconds.
func at(seconds float64) time.Time { return base.Add(time.Duration(seconds * float64(time.Second))) }

// units of the inputs the tests send.
var unitOf = map[string]string{
	"temperature": "Cel", "humidity": "%RH", "wind_speed": "m/s", "pressure": "hPa",
	"solar_radiation": "W/m2", "rain": "mm", "rain_total": "mm", "dew_point": "Cel",
}

// reading returns a reading of station "s1".
func reading(sensor string, seconds, value float64) sensorhub.Reading {
	return sensorhub.Reading{Station: "s1", Sensor: sensor, Time: at(seconds), Value: value, Unit: unitOf[sensor]}
}

// fixture is a schema with a sink running the derived processor.
type fixture struct {
	t    *testing.T
	db   *postgrestest.DB
	sink *postgres.Sink
	proc *derived.Processor
}

func newFixture(t *testing.T, cfg derived.Config) *fixture {
	t.Helper()
	db := postgrestest.New(t)
	proc, err := derived.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Processors: []postgres.Processor{proc}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, sink: sink, proc: proc}
}

// write stores rs in one transaction.
func (f *fixture) write(rs ...sensorhub.Reading) sensorhub.WriteResult {
	f.t.Helper()
	res, err := f.sink.Write(f.t.Context(), sensorhub.Batch{Readings: rs})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// flush releases every held-back reading to the processor.
func (f *fixture) flush() {
	f.t.Helper()
	if _, err := f.sink.Flush(f.t.Context(), 0); err != nil {
		f.t.Fatal(err)
	}
}

// row is a stored derived reading, its value rounded to 1e-9.
type row struct {
	Station, Sensor string
	Time            time.Time
	Value           float64
	Derived         bool
}

func (r row) String() string {
	return fmt.Sprintf("%s/%s@%s=%v(derived %v)", r.Station, r.Sensor, r.Time.UTC().Format("15:04:05"), r.Value, r.Derived)
}

// rows returns the stored readings of the sensor types, in key order.
func (f *fixture) rows(sensors ...string) []row {
	f.t.Helper()
	rows, err := f.db.Pool.Query(f.t.Context(), `SELECT station, sensor, ts, value, derived FROM readings
WHERE sensor = ANY($1) ORDER BY station, sensor, ts`, sensors)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.Station, &x.Sensor, &x.Time, &x.Value, &x.Derived)
		x.Time = x.Time.UTC()
		x.Value = math.Round(x.Value*1e9) / 1e9
		return x, err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// values returns the values of the stored readings of sensor, by their
// offset in seconds from base.
func (f *fixture) values(sensor string) map[float64]float64 {
	f.t.Helper()
	out := map[float64]float64{}
	for _, r := range f.rows(sensor) {
		out[r.Time.Sub(base).Seconds()] = r.Value
	}
	return out
}

// derivedSensors are the types the processor stores.
var derivedSensors = []string{"dew_point", "heat_index", "wind_chill", "apparent_temperature", "absolute_humidity",
	"sea_level_pressure", "rain", "rain_rate"}

// near reports whether a and b agree to 1e-6.
func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// sortedKeys returns m's keys in order.
func sortedKeys(m map[float64]float64) []float64 {
	var ks []float64
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
