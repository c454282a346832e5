package handlers_test

import (
	json "encoding/json/v2"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/handlers/absolutehumidity"
	"github.com/sensorhub/sensorhub/handlers/apparenttemperature"
	"github.com/sensorhub/sensorhub/handlers/battery"
	"github.com/sensorhub/sensorhub/handlers/batterylevel"
	"github.com/sensorhub/sensorhub/handlers/dewpoint"
	"github.com/sensorhub/sensorhub/handlers/heatindex"
	"github.com/sensorhub/sensorhub/handlers/humidity"
	"github.com/sensorhub/sensorhub/handlers/illuminance"
	"github.com/sensorhub/sensorhub/handlers/pressure"
	"github.com/sensorhub/sensorhub/handlers/rain"
	"github.com/sensorhub/sensorhub/handlers/rainrate"
	"github.com/sensorhub/sensorhub/handlers/raintotal"
	"github.com/sensorhub/sensorhub/handlers/sealevelpressure"
	"github.com/sensorhub/sensorhub/handlers/soilmoisture"
	"github.com/sensorhub/sensorhub/handlers/solarradiation"
	"github.com/sensorhub/sensorhub/handlers/temperature"
	"github.com/sensorhub/sensorhub/handlers/uvindex"
	"github.com/sensorhub/sensorhub/handlers/windchill"
	"github.com/sensorhub/sensorhub/handlers/winddirection"
	"github.com/sensorhub/sensorhub/handlers/windgust"
	"github.com/sensorhub/sensorhub/handlers/windspeed"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/sensorhubtest"
)

func TestBuiltin(t *testing.T) {
	t.Parallel()
	// The package constants in Builtin's documented order.
	names := []string{
		temperature.Name, humidity.Name, pressure.Name, windspeed.Name, windgust.Name,
		winddirection.Name, rain.Name, illuminance.Name, uvindex.Name, solarradiation.Name,
		soilmoisture.Name, battery.Name, batterylevel.Name, raintotal.Name, dewpoint.Name, heatindex.Name,
		windchill.Name, apparenttemperature.Name, absolutehumidity.Name, sealevelpressure.Name, rainrate.Name,
	}
	types := handlers.Builtin()
	if len(types) != len(names) {
		t.Fatalf("Builtin returned %d types, want %d", len(types), len(names))
	}
	seen := make(map[string]bool, len(types))
	for i, typ := range types {
		if err := typ.Validate(); err != nil {
			t.Errorf("type %d (%q) is invalid: %v", i, typ.Name, err)
		}
		if typ.Name != names[i] {
			t.Errorf("type %d is %q, want %q", i, typ.Name, names[i])
		}
		if seen[typ.Name] {
			t.Errorf("type %d: duplicate name %q", i, typ.Name)
		}
		seen[typ.Name] = true
	}
}

// TestBuiltinRegisters stores one reading of every built-in type through a
// single hub: the types register side by side, and each accepts a value in
// its canonical unit.
func TestBuiltinRegisters(t *testing.T) {
	t.Parallel()
	types := handlers.Builtin()
	batch := make([]map[string]any, len(types))
	for i, typ := range types {
		batch[i] = map[string]any{"sensor": typ.Name, "value": typ.Max, "unit": typ.Unit, "timestamp": "2024-12-01T12:00:00Z"}
	}
	payload, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sensorhubtest.Process(t, string(payload), types...)
	if err != nil {
		t.Fatalf("rejected with reason %q: %v", sensorhub.ReasonOf(err), err)
	}
	if len(got.Readings) != len(types) {
		t.Fatalf("stored %d readings, want %d", len(got.Readings), len(types))
	}
}

// TestBuiltinCopies checks that every call returns Units maps of its own, so
// that a caller changing one cannot change what other callers get.
func TestBuiltinCopies(t *testing.T) {
	t.Parallel()
	a, b := handlers.Builtin(), handlers.Builtin()
	for i := range a {
		if a[i].Units != nil && reflect.ValueOf(a[i].Units).UnsafePointer() == reflect.ValueOf(b[i].Units).UnsafePointer() {
			t.Errorf("%s: two calls share one Units map", a[i].Name)
		}
	}
}

func ExampleBuiltin() {
	for _, typ := range handlers.Builtin() {
		accepts := slices.Sorted(maps.Keys(typ.Units))
		fmt.Printf("%-20s %-4s %-25s [%v, %v]\n", typ.Name, typ.Unit, strings.Join(accepts, " "), typ.Min, typ.Max)
	}
	// Output:
	// temperature          Cel  K degC degF °C °F         [-100, 100]
	// humidity             %RH  %                         [0, 100]
	// pressure             hPa  Pa bar inHg kPa mbar mmHg [300, 1100]
	// wind_speed           m/s  km/h kn kt mph            [0, 120]
	// wind_gust            m/s  km/h kn kt mph            [0, 120]
	// wind_direction       deg  rad °                     [0, 360]
	// rain                 mm   cm in l/m2 m              [0, 10000]
	// illuminance          lx                             [0, 200000]
	// uv_index             /                              [0, 25]
	// solar_radiation      W/m2 W/m²                      [-10, 2000]
	// soil_moisture        %    /                         [0, 100]
	// battery              V    mV                        [0, 100]
	// battery_level        %    /                         [0, 100]
	// rain_total           mm   cm in l/m2 m              [0, 100000]
	// dew_point            Cel  K degC degF °C °F         [-100, 100]
	// heat_index           Cel  K degC degF °C °F         [-100, 100]
	// wind_chill           Cel  K degC degF °C °F         [-150, 100]
	// apparent_temperature Cel  K degC degF °C °F         [-150, 100]
	// absolute_humidity    g/m3 g/m³ kg/m3                [0, 1000]
	// sea_level_pressure   hPa  Pa bar inHg kPa mbar mmHg [300, 1200]
	// rain_rate            mm/h in/h                      [0, 3000]
}
