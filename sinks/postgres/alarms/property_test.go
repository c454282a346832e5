package alarms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/alarms"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// The property test's world: rules, series, the reorder window, and how
// far a reading may be sent after readings later than it.
const (
	propertyRules  = "temperature>30/28, temperature@s1<0/1, humidity>90/85"
	propertyWindow = 10 * time.Second
	// jitter is how much later than its device time a reading may be
	// sent, in device time; chunkSpan is the device-time span of readings
	// in flight at once. A reading is thus never committed after a reading
	// jitter+chunkSpan < window later than it: always within the window.
	jitter    = 4 * time.Second
	chunkSpan = 5 * time.Second
	perSeries = 60
)

var (
	propertyStations = []string{"s0", "s1", "s2"}
	propertySensors  = map[string]string{"temperature": "Cel", "humidity": "%RH"}
)

// randomReadings returns per series random values a second apart around
// the bounds of its rules, so that they are crossed back and forth.
func randomReadings(rng *rand.Rand) []sensorhub.Reading {
	base := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	var out []sensorhub.Reading
	for _, station := range propertyStations {
		for sensor, unit := range propertySensors {
			centre := 29.0
			switch {
			case sensor == "humidity":
				centre = 87.5
			case station == "s1":
				centre = 0.5
			}
			for i := range perSeries {
				v := centre + float64(rng.IntN(25)-12)*0.25 // ±3 in steps of 0.25
				out = append(out, sensorhub.Reading{Station: station, Sensor: sensor, Unit: unit,
					Time: base.Add(time.Duration(i) * time.Second), Value: v})
			}
		}
	}
	return out
}

func payload(r sensorhub.Reading) string {
	return fmt.Sprintf(`{"sensor":%q,"station":%q,"value":%v,"unit":%q,"timestamp":%q}`,
		r.Sensor, r.Station, r.Value, r.Unit, r.Time.Format(time.RFC3339Nano))
}

// outcome is what the threshold rules left behind: their events in outbox
// (forwarding) order, and every series' state.
type outcome struct {
	events []string          // UUID and payload, in outbox order
	state  map[string]string // station/sensor -> processed_until and state
	late   int
}

func collect(t *testing.T, db *postgrestest.DB) outcome {
	t.Helper()
	events, err := outbox.List(t.Context(), db.Pool, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	o := outcome{state: map[string]string{}}
	for _, e := range events {
		switch e.Type {
		case sensorhub.EventThresholdCrossed:
			o.events = append(o.events, e.UUID+" "+string(e.Payload))
		case sensorhub.EventReadingLate:
			o.late++
		}
	}
	rows, err := db.Pool.Query(t.Context(), `SELECT station || '/' || sensor, processed_until::text || ' ' || coalesce(state::text, '')
FROM processor_cursors WHERE processor = $1`, alarms.Name)
	if err != nil {
		t.Fatal(err)
	}
	var k, v string
	for rows.Next() {
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		o.state[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return o
}

// byRuleAndStation groups event lines by rule and station, keeping order:
// the order the contract promises (events of different stations may
// interleave differently).
func byRuleAndStation(t *testing.T, lines []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range lines {
		var c threshold.Crossed
		if err := json.Unmarshal([]byte(l[strings.IndexByte(l, ' ')+1:]), &c); err != nil {
			t.Fatal(err)
		}
		k := c.Rule + "@" + c.Station
		out[k] = append(out[k], l)
	}
	return out
}

func seedRules(t *testing.T, db *postgrestest.DB) {
	t.Helper()
	rules, err := threshold.Parse(propertyRules)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alarms.SeedRules(t.Context(), db.Pool, rules); err != nil {
		t.Fatal(err)
	}
}

// oracle is the in-order single pass: one sink, one reading per
// transaction in device-time order, then a flush.
func oracle(t *testing.T, readings []sensorhub.Reading) outcome {
	t.Helper()
	db := postgrestest.New(t)
	seedRules(t, db)
	sink, err := postgres.New(postgres.Config{DB: db.Pool, ReorderWindow: propertyWindow,
		Processors: []postgres.Processor{alarms.New(alarms.Config{})}})
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.SortedStableFunc(slices.Values(readings), func(a, b sensorhub.Reading) int { return a.Time.Compare(b.Time) })
	for _, r := range sorted {
		if _, err := sink.Write(t.Context(), sensorhub.Batch{Readings: []sensorhub.Reading{r}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sink.Flush(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	return collect(t, db)
}

// TestPropertyReplicasOutOfOrderGiveTheInOrderPass sends random threshold
// crossings, out of order within the reorder window, with duplicates and
// re-sent old readings, to two pipelines that share one stream and one
// database, and checks that the threshold events (UUIDs, payloads, order
// per rule and station) and every series' final state are exactly those
// of one in-order pass.
func TestPropertyReplicasOutOfOrderGiveTheInOrderPass(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 42))
			readings := randomReadings(rng)
			want := oracle(t, readings)
			if len(want.events) < 10 {
				t.Fatalf("the oracle saw %d crossings; the walk must cross more", len(want.events))
			}

			db := postgrestest.New(t)
			seedRules(t, db)
			stream := redistest.Name(t, "property")
			for _, consumer := range []string{"replica-a", "replica-b"} {
				startReplica(t, db, stream, consumer)
			}
			sendOutOfOrder(t, rng, db, stream, readings)
			// The flushers of both replicas and this one race for the
			// series' last window.
			sink, err := postgres.New(postgres.Config{DB: db.Pool, ReorderWindow: propertyWindow,
				Processors: []postgres.Processor{alarms.New(alarms.Config{})}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sink.Flush(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
			got := collect(t, db)

			if got.late != 0 {
				t.Errorf("%d readings announced late; every reading was sent within the window", got.late)
			}
			gotGroups, wantGroups := byRuleAndStation(t, got.events), byRuleAndStation(t, want.events)
			for k, w := range wantGroups {
				if !slices.Equal(gotGroups[k], w) {
					t.Errorf("events of %s:\n%s\nwant (in-order pass):\n%s", k, strings.Join(gotGroups[k], "\n"), strings.Join(w, "\n"))
				}
			}
			if len(got.events) != len(want.events) {
				t.Errorf("%d events, want %d", len(got.events), len(want.events))
			}
			for k, w := range want.state {
				if got.state[k] != w {
					t.Errorf("state of %s = %s, want %s", k, got.state[k], w)
				}
			}
			t.Logf("%d readings, %d crossings, states %d", len(readings), len(want.events), len(want.state))
		})
	}
}

// startReplica runs a pipeline as consumer on stream, until the test ends.
func startReplica(t *testing.T, db *postgrestest.DB, stream, consumer string) {
	t.Helper()
	p, err := pipeline.New(pipeline.Config{
		DB: db.Pool, Redis: redistest.Options(t), Stream: stream, Consumer: consumer, Events: true,
		EventsStream: stream + "_events", ReorderWindow: propertyWindow,
		Processors: []postgres.Processor{alarms.New(alarms.Config{})},
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, handlers.Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("stop %s: %v", consumer, err)
		}
	})
}

// sendOutOfOrder sends every reading once, in the order of device time
// plus a random jitter, a fifth of them twice, in chunks of chunkSpan of
// device time; it waits for a chunk to be stored before it sends the
// next, so two replicas commit a chunk in any order but never a reading
// after one a window later. Last, it re-sends a few old readings.
func sendOutOfOrder(t *testing.T, rng *rand.Rand, db *postgrestest.DB, stream string, readings []sensorhub.Reading) {
	t.Helper()
	type item struct {
		key time.Time
		r   sensorhub.Reading
	}
	var items []item
	for _, r := range readings {
		items = append(items, item{r.Time.Add(time.Duration(rng.Int64N(int64(jitter)))), r})
		if rng.IntN(5) == 0 {
			items = append(items, item{r.Time.Add(time.Duration(rng.Int64N(int64(jitter)))), r})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return a.key.Compare(b.key) })
	client := redistest.Client(t)
	distinct := map[string]bool{}
	for start := 0; start < len(items); {
		end := start
		for end < len(items) && items[end].key.Sub(items[start].key) < chunkSpan {
			end++
		}
		chunk := slices.Clone(items[start:end])
		rng.Shuffle(len(chunk), func(i, j int) { chunk[i], chunk[j] = chunk[j], chunk[i] })
		pipe := client.Pipeline()
		for _, it := range chunk {
			distinct[payload(it.r)] = true
			pipe.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload(it.r)}})
		}
		if _, err := pipe.Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitStored(t, db, len(distinct))
		start = end
	}
	for range 10 {
		r := readings[rng.IntN(len(readings))]
		client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload(r)}})
	}
	waitAcked(t, client, stream)
}

func waitStored(t *testing.T, db *postgrestest.DB, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var stored int
		if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM readings`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d readings stored after 30 s, want %d", stored, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitAcked(t *testing.T, client *goredis.Client, stream string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		groups, err := client.XInfoGroups(t.Context(), stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		length := client.XLen(t.Context(), stream).Val()
		if len(groups) == 1 && groups[0].Pending == 0 && groups[0].EntriesRead == length {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries not all acked after 30 s: %+v of %d", groups, length)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
