package sensorhub_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
)

const legacyMessage = `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`

var noon = time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)

// temperature is the sensor type the tests register, defined here rather
// than taken from handlers/ so that the core is tested on its own.
var temperature = sensorhub.SensorType{
	Name: "temperature",
	Unit: "Cel",
	Min:  -90,
	Max:  60,
	Units: map[string]sensorhub.Conversion{
		"degF": func(v float64) float64 { return (v - 32) * 5 / 9 },
		"K":    func(v float64) float64 { return v - 273.15 },
	},
}

var humidity = sensorhub.SensorType{Name: "humidity", Unit: "%RH", Min: 0, Max: 100}

// withHandle returns temperature with handle as its Handle.
func withHandle(handle sensorhub.HandleFunc) sensorhub.SensorType {
	t := temperature
	t.Handle = handle
	return t
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// sameReadings compares readings, values to 1e-9 (unit conversions round).
func sameReadings(got, want []sensorhub.Reading) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Station != w.Station || g.Sensor != w.Sensor || !g.Time.Equal(w.Time) ||
			math.Abs(g.Value-w.Value) > 1e-9 || g.Unit != w.Unit || g.ID != w.ID {
			return false
		}
	}
	return true
}

// newHub builds a hub of types over an in-memory channel, returning New's
// error.
func newHub(t *testing.T, types ...sensorhub.SensorType) (*sensorhub.Hub, error) {
	t.Helper()
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	return sensorhub.New(sensorhub.Config{Subscriber: pubsub, Publisher: pubsub, Sink: &sensorhubtest.Sink{}, Logger: testLogger(t)}, types...)
}

func TestNewSensorTypes(t *testing.T) {
	t.Parallel()
	nilConversion := temperature
	nilConversion.Units = map[string]sensorhub.Conversion{"degF": nil}

	for _, tc := range []struct {
		name string
		typ  sensorhub.SensorType
	}{
		{"empty name", sensorhub.SensorType{Unit: "Cel"}},
		{"uppercase name", sensorhub.SensorType{Name: "Temperature", Unit: "Cel"}},
		{"leading digit", sensorhub.SensorType{Name: "1temperature", Unit: "Cel"}},
		{"leading underscore", sensorhub.SensorType{Name: "_temperature", Unit: "Cel"}},
		{"hyphen", sensorhub.SensorType{Name: "wind-speed", Unit: "m/s"}},
		{"space", sensorhub.SensorType{Name: "wind speed", Unit: "m/s"}},
		{"trailing newline", sensorhub.SensorType{Name: "temperature\n", Unit: "Cel"}},
		{"65 characters", sensorhub.SensorType{Name: strings.Repeat("t", 65), Unit: "Cel"}},
		{"star prefix", sensorhub.SensorType{Name: "*temperature", Unit: "Cel"}},
		{"empty unit", sensorhub.SensorType{Name: "temperature"}},
		{"inverted range", sensorhub.SensorType{Name: "temperature", Unit: "Cel", Min: 60, Max: -90}},
		{"NaN bound", sensorhub.SensorType{Name: "temperature", Unit: "Cel", Min: math.NaN(), Max: 60}},
		{"nil conversion", nilConversion},
	} {
		t.Run(tc.name+"=>rejected", func(t *testing.T) {
			t.Parallel()
			if err := tc.typ.Validate(); err == nil {
				t.Error("Validate accepted the type")
			}
			if hub, err := newHub(t, temperature, tc.typ); err == nil {
				t.Errorf("New accepted the type: %v", hub.SensorTypes())
			}
		})
	}

	t.Run("duplicate name=>rejected", func(t *testing.T) {
		t.Parallel()
		other := humidity
		other.Name = "temperature"
		_, err := newHub(t, temperature, other, humidity)
		if err == nil || !strings.Contains(err.Error(), `"temperature" given twice`) {
			t.Errorf("New with a duplicate name: %v, want given twice", err)
		}
		catchAll := sensorhub.SensorType{Name: sensorhub.CatchAll}
		if _, err := newHub(t, catchAll, catchAll); err == nil {
			t.Error("New accepted a second catch-all type")
		}
	})

	t.Run("no types=>rejected", func(t *testing.T) {
		t.Parallel()
		if _, err := newHub(t); err == nil || !strings.Contains(err.Error(), "sensor types") {
			t.Errorf("New without sensor types: %v, want an error", err)
		}
	})

	t.Run("every problem reported at once", func(t *testing.T) {
		t.Parallel()
		_, err := newHub(t, sensorhub.SensorType{Name: "Bad", Unit: "1"}, temperature, temperature)
		if err == nil || !strings.Contains(err.Error(), `"Bad" does not match`) || !strings.Contains(err.Error(), "given twice") {
			t.Errorf("New error %v, want both the bad name and the duplicate", err)
		}
	})

	t.Run("validate reports every problem at once", func(t *testing.T) {
		t.Parallel()
		err := sensorhub.SensorType{Name: "Bad", Min: 1, Max: 0, Units: map[string]sensorhub.Conversion{"x": nil}}.Validate()
		if err == nil {
			t.Fatal("Validate accepted the type")
		}
		for _, want := range []string{"does not match", "unit is required", "invalid range", `unit "x" has no conversion`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Validate error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("valid types=>accepted", func(t *testing.T) {
		t.Parallel()
		valid := []sensorhub.SensorType{
			temperature,
			humidity,
			{Name: "wind_speed", Unit: "m/s", Min: 0, Max: 120},
			{Name: "soil_ph", Unit: "pH", Min: 0, Max: 14},
			{Name: "counter", Unit: "1"},               // unbounded
			{Name: "fixed", Unit: "V", Min: 5, Max: 5}, // one valid value
			{Name: strings.Repeat("x", 64), Unit: "1"},
			{Name: sensorhub.CatchAll}, // the catch-all may keep the message's unit
		}
		hub := sensorhubtest.NewHub(t, &sensorhubtest.Sink{}, sensorhub.DecoderConfig{Now: clock}, valid...)
		want := []string{"*", "counter", "fixed", "humidity", "soil_ph", "temperature", "wind_speed", strings.Repeat("x", 64)}
		if got := hub.SensorTypes(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("SensorTypes = %v, want sorted %v", got, want)
		}
	})

	t.Run("units map is copied", func(t *testing.T) {
		t.Parallel()
		typ := temperature
		typ.Units = map[string]sensorhub.Conversion{"degF": temperature.Units["degF"]}
		sink := &sensorhubtest.Sink{}
		hub := sensorhubtest.NewHub(t, sink, sensorhub.DecoderConfig{Now: clock}, typ)
		delete(typ.Units, "degF")
		if _, err := hub.Process(t.Context(), []byte(`{"sensor": "temperature", "value": 212, "unit": "degF", "timestamp": "2024-12-01 12:00:00"}`)); err == nil ||
			sensorhub.ReasonOf(err) != sensorhub.ReasonValueOutOfRange {
			t.Errorf("Process after the caller changed its map: %v, want the registered degF conversion (100 Cel, out of range)", err)
		}
	})
}

// failingSink fails every Write with err.
type failingSink struct{ err error }

func (s failingSink) Write(context.Context, sensorhub.Batch) (sensorhub.WriteResult, error) {
	return sensorhub.WriteResult{}, s.err
}

func TestProcess(t *testing.T) {
	t.Parallel()
	var (
		errProbe    = errors.New("probe disconnected")
		errDatabase = errors.New("connection refused")
	)
	legacy := sensorhub.Reading{Station: "default", Sensor: "temperature", Time: noon, Value: 14, Unit: "Cel"}

	for _, tc := range []struct {
		name    string
		types   []sensorhub.SensorType
		sink    sensorhub.Sink // default: a sensorhubtest.Sink
		payload string
		ctx     func(context.Context) context.Context
		want    []sensorhub.Reading // stored
		// For a failure: reason of a permanent error, or transient; index
		// and field of the *InputError, if any.
		reason    string
		transient error
		index     int
		field     string
	}{
		{name: "legacy message", types: []sensorhub.SensorType{temperature}, payload: legacyMessage, want: []sensorhub.Reading{legacy}},
		{name: "station unit and id kept", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": 14, "unit": "Cel", "timestamp": "2024-12-01T12:00:00Z", "station": "roof", "id": "m-1"}`,
			want:    []sensorhub.Reading{{Station: "roof", Sensor: "temperature", Time: noon, Value: 14, Unit: "Cel", ID: "m-1"}}},
		{name: "fahrenheit converted", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": 57.2, "unit": "degF", "timestamp": "2024-12-01 12:00:00"}`, want: []sensorhub.Reading{legacy}},
		{name: "kelvin converted", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": 287.15, "unit": "K", "timestamp": "2024-12-01 12:00:00"}`, want: []sensorhub.Reading{legacy}},
		{name: "upper bound inclusive", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": 60, "timestamp": "2024-12-01 12:00:00"}`,
			want:    []sensorhub.Reading{{Station: "default", Sensor: "temperature", Time: noon, Value: 60, Unit: "Cel"}}},
		{name: "above range", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": 60.5, "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonValueOutOfRange, index: -1, field: "value"},
		{name: "below range", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": -91, "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonValueOutOfRange, index: -1, field: "value"},
		{name: "range checked after conversion", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": 212, "unit": "degF", "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonValueOutOfRange, index: -1, field: "value"},
		{name: "unknown unit", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": 14, "unit": "furlongs", "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonUnknownUnit, index: -1, field: "unit"},
		{name: "unknown sensor", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "soil_ph", "value": 6.5, "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonUnknownSensor, index: -1, field: "sensor"},
		{name: "decode error", types: []sensorhub.SensorType{temperature},
			payload: `{"sensor": "temperature", "value": "hot", "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonInvalidField, index: -1, field: "value"},
		{name: "unknown sensor to catch-all with its unit", types: []sensorhub.SensorType{temperature, {Name: sensorhub.CatchAll}},
			payload: `{"sensor": "soil_ph", "value": 6.5, "unit": "pH", "timestamp": "2024-12-01 12:00:00", "station": "garden"}`,
			want:    []sensorhub.Reading{{Station: "garden", Sensor: "soil_ph", Time: noon, Value: 6.5, Unit: "pH"}}},
		{name: "unknown sensor to catch-all without unit", types: []sensorhub.SensorType{{Name: sensorhub.CatchAll}},
			payload: `{"sensor": "soil_ph", "value": 6.5, "timestamp": "2024-12-01 12:00:00"}`,
			want:    []sensorhub.Reading{{Station: "default", Sensor: "soil_ph", Time: noon, Value: 6.5}}},
		{name: "known sensor beside catch-all still converted", types: []sensorhub.SensorType{temperature, {Name: sensorhub.CatchAll}},
			payload: `{"sensor": "temperature", "value": 57.2, "unit": "degF", "timestamp": "2024-12-01 12:00:00"}`, want: []sensorhub.Reading{legacy}},
		{name: "catch-all range applies to the message's unit", types: []sensorhub.SensorType{{Name: sensorhub.CatchAll, Min: -1000, Max: 1000}},
			payload: `{"sensor": "soil_ph", "value": 5000, "unit": "pH", "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonValueOutOfRange, index: -1, field: "value"},
		{name: "catch-all with a canonical unit rejects others", types: []sensorhub.SensorType{{Name: sensorhub.CatchAll, Unit: "1"}},
			payload: `{"sensor": "soil_ph", "value": 5, "unit": "pH", "timestamp": "2024-12-01 12:00:00"}`, reason: sensorhub.ReasonUnknownUnit, index: -1, field: "unit"},
		{name: "handle gets the converted reading and returns two",
			types: []sensorhub.SensorType{withHandle(func(ctx context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
				if r.Value < 13.999 || r.Value > 14.001 || r.Unit != "Cel" {
					return sensorhub.Batch{}, sensorhub.Permanent("test_unconverted", errors.New("handler got an unconverted reading"))
				}
				derived := r
				derived.Sensor, derived.Value, derived.Unit = "temperature_k", r.Value+273.15, "K"
				return sensorhub.Batch{Readings: []sensorhub.Reading{r, derived}}, nil
			})},
			payload: `{"sensor": "temperature", "value": 57.2, "unit": "degF", "timestamp": "2024-12-01 12:00:00"}`,
			want:    []sensorhub.Reading{legacy, {Station: "default", Sensor: "temperature_k", Time: noon, Value: 287.15, Unit: "K"}}},
		{name: "handle drops the reading",
			types: []sensorhub.SensorType{withHandle(func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) {
				return sensorhub.Batch{}, nil
			})},
			payload: legacyMessage, want: []sensorhub.Reading{}},
		{name: "handle returns a permanent error",
			types: []sensorhub.SensorType{withHandle(func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) {
				return sensorhub.Batch{}, sensorhub.Permanent("my_reason", errProbe)
			})},
			payload: legacyMessage, reason: "my_reason", index: -1},
		{name: "handle returns a plain error",
			types: []sensorhub.SensorType{withHandle(func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) {
				return sensorhub.Batch{}, errProbe
			})},
			payload: legacyMessage, transient: errProbe},
		{name: "handle panics",
			types: []sensorhub.SensorType{withHandle(func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) {
				panic("boom")
			})},
			payload: legacyMessage, reason: sensorhub.ReasonHandlerPanic, index: -1},
		{name: "handle honours a cancelled context",
			types: []sensorhub.SensorType{withHandle(func(ctx context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
				if err := ctx.Err(); err != nil {
					return sensorhub.Batch{}, err
				}
				return sensorhub.Batch{Readings: []sensorhub.Reading{r}}, nil
			})},
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			},
			payload: legacyMessage, transient: context.Canceled},
		{name: "batch of three", types: []sensorhub.SensorType{temperature, humidity},
			payload: `[` + legacyMessage + `, {"sensor": "humidity", "value": 81.5, "timestamp": "2024-12-01T12:00:00Z", "station": "roof"},` +
				` {"sensor": "temperature", "value": 15, "timestamp": "2024-12-01T12:01:00Z", "station": "roof"}]`,
			want: []sensorhub.Reading{
				legacy,
				{Station: "roof", Sensor: "humidity", Time: noon, Value: 81.5, Unit: "%RH"},
				{Station: "roof", Sensor: "temperature", Time: noon.Add(time.Minute), Value: 15, Unit: "Cel"},
			}},
		{name: "batch with an out-of-range 3rd reading", types: []sensorhub.SensorType{temperature, humidity},
			payload: `[` + legacyMessage + `, {"sensor": "humidity", "value": 81.5, "timestamp": "2024-12-01T12:00:00Z"},` +
				` {"sensor": "humidity", "value": 101, "timestamp": "2024-12-01T12:01:00Z"}]`,
			reason: sensorhub.ReasonValueOutOfRange, index: 2, field: "value"},
		{name: "batch with an unknown 2nd sensor", types: []sensorhub.SensorType{temperature},
			payload: `[` + legacyMessage + `, {"sensor": "humidity", "value": 81.5, "timestamp": "2024-12-01T12:00:00Z"}]`,
			reason:  sensorhub.ReasonUnknownSensor, index: 1, field: "sensor"},
		{name: "batch with a panicking 2nd reading",
			types: []sensorhub.SensorType{humidity, withHandle(func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) {
				panic("boom")
			})},
			payload: `[{"sensor": "humidity", "value": 81.5, "timestamp": "2024-12-01T12:00:00Z"}, ` + legacyMessage + `]`,
			reason:  sensorhub.ReasonHandlerPanic, index: -1},
		{name: "sink rejects permanently", types: []sensorhub.SensorType{temperature},
			sink:    failingSink{sensorhub.Permanent(sensorhub.ReasonDatabaseRejected, errors.New("value too long"))},
			payload: legacyMessage, reason: sensorhub.ReasonDatabaseRejected, index: -1},
		{name: "sink fails transiently", types: []sensorhub.SensorType{temperature},
			sink: failingSink{errDatabase}, payload: legacyMessage, transient: errDatabase},
	} {
		outcome := "stored"
		switch {
		case tc.reason != "":
			outcome = tc.reason
		case tc.transient != nil:
			outcome = "transient"
		}
		t.Run(tc.name+"=>"+outcome, func(t *testing.T) {
			t.Parallel()
			mem := &sensorhubtest.Sink{}
			var sink sensorhub.Sink = mem
			if tc.sink != nil {
				sink = tc.sink
			}
			hub := sensorhubtest.NewHub(t, sink, sensorhub.DecoderConfig{Now: clock}, tc.types...)
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			res, err := hub.Process(ctx, []byte(tc.payload))
			stored := mem.Readings()

			switch {
			case tc.reason != "":
				if !sensorhub.IsPermanent(err) || sensorhub.ReasonOf(err) != tc.reason {
					t.Fatalf("Process: %v (permanent %v, reason %q), want permanent %q", err, sensorhub.IsPermanent(err), sensorhub.ReasonOf(err), tc.reason)
				}
				var in *sensorhub.InputError
				if tc.field != "" || tc.index >= 0 {
					if !errors.As(err, &in) {
						t.Fatalf("Process: %v is not an *InputError", err)
					}
					if in.Index != tc.index || in.Field != tc.field {
						t.Errorf("index %d field %q, want %d %q: %v", in.Index, in.Field, tc.index, tc.field, err)
					}
				}
			case tc.transient != nil:
				if err == nil || sensorhub.IsPermanent(err) || sensorhub.ReasonOf(err) != "" || !errors.Is(err, tc.transient) {
					t.Fatalf("Process: %v (permanent %v), want transient %v", err, sensorhub.IsPermanent(err), tc.transient)
				}
			default:
				if err != nil {
					t.Fatalf("Process: %v", err)
				}
				if res.Stored != len(tc.want) || res.Duplicates != 0 || res.Conflicts != 0 {
					t.Errorf("WriteResult = %+v, want %d stored", res, len(tc.want))
				}
				if !sameReadings(stored, tc.want) {
					t.Errorf("stored\n %+v\nwant\n %+v", stored, tc.want)
				}
				if got := hub.Stats().Stored; got != uint64(len(tc.want)) {
					t.Errorf("Stats.Stored = %d, want %d", got, len(tc.want))
				}
				return
			}
			if len(stored) != 0 || res != (sensorhub.WriteResult{}) {
				t.Errorf("failed message stored %+v (result %+v)", stored, res)
			}
		})
	}
}

func TestProcessDuplicatesAndConflicts(t *testing.T) {
	t.Parallel()
	sink := &sensorhubtest.Sink{}
	hub := sensorhubtest.NewHub(t, sink, sensorhub.DecoderConfig{Now: clock}, temperature)
	for _, step := range []struct {
		payload string
		want    sensorhub.WriteResult
	}{
		{legacyMessage, sensorhub.WriteResult{Stored: 1}},
		{legacyMessage, sensorhub.WriteResult{Duplicates: 1}},
		// The same instant in another notation is the same natural key.
		{`{"sensor": "temperature", "value": 14, "timestamp": 1733054400000}`, sensorhub.WriteResult{Duplicates: 1}},
		{`{"sensor": "temperature", "value": 15, "timestamp": "2024-12-01T13:00:00+01:00"}`, sensorhub.WriteResult{Conflicts: 1}},
	} {
		res, err := hub.Process(t.Context(), []byte(step.payload))
		if err != nil || res != step.want {
			t.Fatalf("Process(%s) = %+v, %v; want %+v", step.payload, res, err, step.want)
		}
	}
	if st := hub.Stats(); st.Stored != 1 || st.Duplicates != 2 || st.Conflicts != 1 {
		t.Errorf("Stats = %+v, want 1 stored, 2 duplicates, 1 conflict", st)
	}
	if got := sink.Readings(); len(got) != 1 || got[0].Value != 14 {
		t.Errorf("stored %+v, want the first write only", got)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	t.Run("missing dependencies reported at once", func(t *testing.T) {
		t.Parallel()
		err := sensorhub.Config{}.Validate()
		if err == nil {
			t.Fatal("Validate accepted an empty config")
		}
		_, newErr := sensorhub.New(sensorhub.Config{})
		if newErr == nil {
			t.Fatal("New accepted an empty config")
		}
		for _, want := range []string{"subscriber is required", "publisher is required", "sink is required"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Validate error %q does not mention %q", err, want)
			}
			if !strings.Contains(newErr.Error(), want) {
				t.Errorf("New error %q does not mention %q", newErr, want)
			}
		}
	})

	t.Run("every bad field reported at once", func(t *testing.T) {
		t.Parallel()
		pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
		t.Cleanup(func() { _ = pubsub.Close() })
		err := sensorhub.Config{
			Subscriber: pubsub, Publisher: pubsub, Sink: &sensorhubtest.Sink{},
			Stream: "s", PoisonStream: "s",
			HandlerTimeout: -1, RetryInterval: -1, MaxRetryBackoff: -1, CloseTimeout: -1, MaxRetries: -1,
			Decoder: sensorhub.DecoderConfig{MaxMessageBytes: -1},
		}.Validate()
		if err == nil {
			t.Fatal("Validate accepted the config")
		}
		for _, want := range []string{"poison stream", "handler timeout", "retry interval", "max retry backoff", "close timeout", "max retries", "max message bytes"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Validate error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("complete config is valid", func(t *testing.T) {
		t.Parallel()
		pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
		t.Cleanup(func() { _ = pubsub.Close() })
		if err := (sensorhub.Config{Subscriber: pubsub, Publisher: pubsub, Sink: &sensorhubtest.Sink{}}).Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
}

// testHub is a hub wired to its own in-memory Watermill channel.
type testHub struct {
	*sensorhub.Hub
	pubsub *gochannel.GoChannel
}

func newTestHub(t *testing.T, sink sensorhub.Sink, cfg sensorhub.Config, types ...sensorhub.SensorType) testHub {
	t.Helper()
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	cfg.Subscriber, cfg.Publisher, cfg.Sink = pubsub, pubsub, sink
	cfg.Decoder.Now = clock
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = time.Millisecond
	}
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = 5 * time.Millisecond
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	hub, err := sensorhub.New(cfg, types...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return testHub{Hub: hub, pubsub: pubsub}
}

// start starts the hub and stops it at the end of the test if the test has
// not.
func (h testHub) start(t *testing.T) {
	t.Helper()
	if err := h.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Stop(ctx)
	})
}

func (h testHub) publish(t *testing.T, topic, payload string, metadata ...string) *message.Message {
	t.Helper()
	msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
	for i := 0; i+1 < len(metadata); i += 2 {
		msg.Metadata.Set(metadata[i], metadata[i+1])
	}
	if err := h.pubsub.Publish(topic, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return msg
}

// stop stops the hub and checks it ends cleanly.
func (h testHub) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := h.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after Stop")
	}
	if err := h.Err(); err != nil {
		t.Errorf("Err after Stop = %v, want nil", err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()

	t.Run("second start fails", func(t *testing.T) {
		t.Parallel()
		hub := newTestHub(t, &sensorhubtest.Sink{}, sensorhub.Config{}, temperature)
		if err := hub.Check(t.Context()); err == nil {
			t.Error("Check succeeded before Start")
		}
		hub.start(t)
		if err := hub.Start(t.Context()); !errors.Is(err, sensorhub.ErrStarted) {
			t.Errorf("second Start: %v, want ErrStarted", err)
		}
		if got := hub.SensorTypes(); len(got) != 1 || got[0] != "temperature" {
			t.Errorf("SensorTypes = %v, want [temperature]", got)
		}
		if err := hub.Check(t.Context()); err != nil {
			t.Errorf("Check while running: %v", err)
		}
		select {
		case <-hub.Done():
			t.Fatal("Done closed while running")
		default:
		}
		hub.stop(t)
	})

	t.Run("start after stop fails", func(t *testing.T) {
		t.Parallel()
		hub := newTestHub(t, &sensorhubtest.Sink{}, sensorhub.Config{}, temperature)
		hub.stop(t)
		if err := hub.Start(t.Context()); !errors.Is(err, sensorhub.ErrStarted) {
			t.Errorf("Start after Stop: %v, want ErrStarted", err)
		}
	})

	t.Run("run returns nil when its context ends", func(t *testing.T) {
		t.Parallel()
		hub := newTestHub(t, &sensorhubtest.Sink{}, sensorhub.Config{}, temperature)
		ctx, cancel := context.WithCancel(t.Context())
		ran := make(chan error, 1)
		go func() { ran <- hub.Run(ctx) }()
		poll.Until(t, 10*time.Second, "the hub to run", func() bool { return hub.Check(t.Context()) == nil })
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		<-hub.Done()
		if err := hub.Err(); err != nil {
			t.Errorf("Err = %v, want nil", err)
		}
	})

	t.Run("subscriber closing stops the hub with ErrStopped", func(t *testing.T) {
		t.Parallel()
		hub := newTestHub(t, &sensorhubtest.Sink{}, sensorhub.Config{}, temperature)
		hub.start(t)
		if err := hub.pubsub.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-hub.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed after the subscriber closed")
		}
		if err := hub.Err(); !errors.Is(err, sensorhub.ErrStopped) {
			t.Errorf("Err = %v, want ErrStopped", err)
		}
		if err := hub.Check(t.Context()); err == nil {
			t.Error("Check succeeded after the router stopped")
		}
	})
}

// TestHubEndToEnd runs messages through the router: good ones land in the
// sink, bad ones on the poison topic with the contract's metadata.
func TestHubEndToEnd(t *testing.T) {
	t.Parallel()
	sink := &sensorhubtest.Sink{}
	hub := newTestHub(t, sink, sensorhub.Config{}, temperature, sensorhub.SensorType{
		Name: "explosive", Unit: "1",
		Handle: func(context.Context, sensorhub.Reading) (sensorhub.Batch, error) { panic("boom") },
	})
	// The wire names of DESIGN.md §2 and §4, spelled out.
	const stream, poisonStream = "sensor_stream", "sensor_stream.poison"
	poisoned, err := hub.pubsub.Subscribe(t.Context(), poisonStream)
	if err != nil {
		t.Fatal(err)
	}
	hub.start(t)

	bad := map[string]string{ // payload → reason
		`{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00`:       sensorhub.ReasonInvalidJSON,
		`{"sensor": "soil_ph", "value": 6.5, "timestamp": "2024-12-01 12:00:00"}`:     sensorhub.ReasonUnknownSensor,
		`{"sensor": "temperature", "value": 99, "timestamp": "2024-12-01 12:00:00"}`:  sensorhub.ReasonValueOutOfRange,
		`{"sensor": "explosive", "value": 1, "timestamp": "2024-12-01 12:00:00"}`:     sensorhub.ReasonHandlerPanic,
		`{"sensor": "temperature", "value": 14, "timestamp": "2099-01-01T00:00:00Z"}`: sensorhub.ReasonTimestampOutOfWindow,
		``: sensorhub.ReasonUnsupportedEntry, // a transport found no payload
	}
	before := time.Now().UTC().Add(-time.Second)
	hub.publish(t, stream, legacyMessage, sensorhub.MetadataEntryID, "1733054400000-0")
	for payload, reason := range bad {
		md := []string{sensorhub.MetadataEntryID, "entry-" + reason}
		if reason == sensorhub.ReasonUnsupportedEntry {
			md = append(md, sensorhub.MetadataInvalidEntry, "entry has no payload field")
		}
		hub.publish(t, stream, payload, md...)
	}

	seen := make(map[string]bool)
	for len(seen) < len(bad) {
		select {
		case msg := <-poisoned:
			msg.Ack()
			payload := string(msg.Payload)
			want, ok := bad[payload]
			if !ok {
				t.Fatalf("poisoned a message that is not bad: %s", payload)
			}
			if seen[payload] {
				t.Fatalf("poisoned twice: %s", payload)
			}
			seen[payload] = true
			md := msg.Metadata
			if got := md.Get(sensorhub.MetadataReason); got != want || md.Get("reason") != want {
				t.Errorf("poisoned %q with reason %q, want %q", payload, got, want)
			}
			if md.Get(sensorhub.MetadataError) == "" || md.Get("error") == "" {
				t.Errorf("poisoned %q without error text", payload)
			}
			at, err := time.Parse(time.RFC3339Nano, md.Get("poisoned_at"))
			if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
				t.Errorf("poisoned %q with poisoned_at %q: %v", payload, md.Get("poisoned_at"), err)
			}
			if got := md.Get(sensorhub.MetadataEntryID); got != "entry-"+want {
				t.Errorf("poisoned %q with entry_id %q, want the source entry's", payload, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for poisoned messages; got %d of %d", len(seen), len(bad))
		}
	}

	poll.Until(t, 10*time.Second, "the good reading to be stored", func() bool { return len(sink.Readings()) == 1 })
	want := []sensorhub.Reading{{Station: "default", Sensor: "temperature", Time: noon, Value: 14, Unit: "Cel"}}
	if got := sink.Readings(); !sameReadings(got, want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}
	// A poisoned message is counted once its publish returned, which may
	// be after the poison subscriber above received it.
	poll.Until(t, 10*time.Second, "the stats to settle", func() bool {
		st := hub.Stats()
		var poisoned uint64
		for _, n := range st.Poisoned {
			poisoned += n
		}
		return st.Received == uint64(len(bad)+1) && st.Stored == 1 && poisoned == uint64(len(bad))
	})
	st := hub.Stats()
	if st.Duplicates != 0 || st.Conflicts != 0 || st.Retried != 0 {
		t.Errorf("Stats = %+v, want no duplicates, conflicts or retries", st)
	}
	wantPoisoned := make(map[string]uint64)
	for _, reason := range bad {
		wantPoisoned[reason]++
	}
	if len(st.Poisoned) != len(wantPoisoned) {
		t.Errorf("Stats.Poisoned = %v, want %v", st.Poisoned, wantPoisoned)
	}
	for reason, n := range wantPoisoned {
		if st.Poisoned[reason] != n {
			t.Errorf("Stats.Poisoned[%q] = %d, want %d", reason, st.Poisoned[reason], n)
		}
	}
	hub.stop(t)
}

// flakySink fails its first failures Writes with a transient error, then
// stores into Sink.
type flakySink struct {
	sensorhubtest.Sink
	failures int64
	calls    atomic.Int64
}

func (s *flakySink) Write(ctx context.Context, batch sensorhub.Batch) (sensorhub.WriteResult, error) {
	if s.calls.Add(1) <= s.failures {
		return sensorhub.WriteResult{}, errors.New("postgres: connection refused")
	}
	return s.Sink.Write(ctx, batch)
}

func TestHubRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		failures   int64
		maxRetries int
	}{
		{name: "retried in process", failures: 3, maxRetries: 5},
		// A sink outage is retried for as long as it lasts, never nacked:
		// a redelivery would spend the message's redelivery budget.
		{name: "outage outlasting MaxRetries retried in process", failures: 6, maxRetries: 2},
	} {
		t.Run(tc.name+"=>stored", func(t *testing.T) {
			t.Parallel()
			sink := &flakySink{failures: tc.failures}
			var logs syncbuf.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			hub := newTestHub(t, sink, sensorhub.Config{MaxRetries: tc.maxRetries, Logger: logger}, temperature)
			poisoned, err := hub.pubsub.Subscribe(t.Context(), sensorhub.DefaultStream+sensorhub.PoisonSuffix)
			if err != nil {
				t.Fatal(err)
			}
			hub.start(t)
			hub.publish(t, sensorhub.DefaultStream, legacyMessage)

			poll.Until(t, 10*time.Second, "the reading to be stored", func() bool { return hub.Stats().Stored == 1 })
			if got := sink.Readings(); len(got) != 1 {
				t.Errorf("stored %+v, want the legacy reading", got)
			}
			if got := sink.calls.Load(); got != tc.failures+1 {
				t.Errorf("sink called %d times, want %d", got, tc.failures+1)
			}
			st := hub.Stats()
			if st.Retried == 0 {
				t.Error("Stats.Retried = 0 after transient failures")
			}
			if len(st.Poisoned) != 0 {
				t.Errorf("Stats.Poisoned = %v for a transient error", st.Poisoned)
			}
			if st.Received != 1 {
				t.Errorf("Stats.Received = %d, want one delivery, no redelivery", st.Received)
			}
			// The outage is told once, however often it was retried.
			if n := strings.Count(logs.String(), "sink unavailable"); n != 1 {
				t.Errorf("%d Warn records of the outage, want 1:\n%s", n, logs.String())
			}
			select {
			case msg := <-poisoned:
				msg.Ack()
				t.Errorf("transient error poisoned the message: %v", msg.Metadata)
			case <-time.After(50 * time.Millisecond):
			}
			hub.stop(t)
		})
	}
}

// TestHubConcurrentProcess runs Process from many goroutines, for -race.
func TestHubConcurrentProcess(t *testing.T) {
	t.Parallel()
	sink := &sensorhubtest.Sink{}
	hub := sensorhubtest.NewHub(t, sink, sensorhub.DecoderConfig{Now: clock}, temperature, humidity)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			ts := noon.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
			payload := `[{"sensor": "temperature", "value": 14, "timestamp": "` + ts + `"}, {"sensor": "humidity", "value": 50, "timestamp": "` + ts + `"}]`
			if _, err := hub.Process(t.Context(), []byte(payload)); err != nil {
				t.Errorf("Process: %v", err)
			}
		})
	}
	wg.Wait()
	if got := len(sink.Readings()); got != 64 {
		t.Errorf("stored %d readings, want 64", got)
	}
	if st := hub.Stats(); st.Stored != 64 {
		t.Errorf("Stats.Stored = %d, want 64", st.Stored)
	}
}
