package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// sensorType is a built-in type and the value its readings vary around.
type sensorType struct {
	name  string
	value float64
}

// sensorTypes are the built-in types the dataset cycles through, each with a
// value inside its valid range.
var sensorTypes = []sensorType{
	{"temperature", 14.5}, {"humidity", 55}, {"pressure", 1013.2}, {"wind_speed", 3.4},
	{"wind_gust", 7.9}, {"wind_direction", 270}, {"rain", 0.2}, {"illuminance", 12000},
	{"uv_index", 3}, {"solar_radiation", 450}, {"soil_moisture", 31}, {"battery", 3.7},
	{"rain_total", 12.4},
}

// valueAt returns the value of the k-th reading of a series of type t: the
// type's value and a tenth more or two, in turn, as weather varies from
// one reading to the next. Readings stuck at one value for hours are a
// flat line to quality control, whose evaluation of a late reading then
// reads the whole run back. rain_total, a running total, stays put: a
// decrease would be a reset.
func valueAt(t sensorType, k int) float64 {
	if t.name == "rain_total" {
		return t.value
	}
	return math.Round((t.value+0.1*float64(k%3))*10) / 10
}

// benchStart is the device time of the first reading; the legacy format
// has no zone and is read as UTC.
var benchStart = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)

// reading is one dataset row, with its message in the legacy format.
type reading struct {
	station, sensor string
	ts              time.Time
	value           float64
	payload         string
}

// dataset returns n readings with distinct natural keys: each station reports
// every type once per second.
func dataset(n, stations int) []reading {
	out := make([]reading, n)
	for i := range out {
		t := sensorTypes[(i/stations)%len(sensorTypes)]
		k := i / (stations * len(sensorTypes))
		ts := benchStart.Add(time.Duration(k) * time.Second)
		station, value := fmt.Sprintf("station-%d", i%stations), valueAt(t, k)
		out[i] = reading{
			station: station,
			sensor:  t.name,
			ts:      ts,
			value:   value,
			payload: fmt.Sprintf(`{"sensor": %q, "value": %v, "timestamp": %q, "station": %q}`,
				t.name, value, ts.Format(time.DateTime), station),
		}
	}
	return out
}

// ruleOnEveryType returns SENSORHUB_THRESHOLDS with a rule on every type of
// the dataset, which each series raises with its first reading.
func ruleOnEveryType() string {
	rules := make([]string, len(sensorTypes))
	for i, t := range sensorTypes {
		rules[i] = fmt.Sprintf("%s>%v", t.name, t.value-0.1)
	}
	return strings.Join(rules, ",")
}
