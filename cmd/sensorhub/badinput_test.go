package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/handlers"
	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis"
	"github.com/sensorhub/sensorhub/sinks/postgres/rollup/rolluptest"
)

// The zones of TestBadInput: zone-less device times are read in
// badInputZone (SENSORHUB_TIMEZONE), while the service's PostgreSQL sessions
// run in badInputSessionZone. Both are far from UTC and from each other, with
// offsets that are not whole hours, and St. John's has summer time, so that
// any reading of a zone-less time in the wrong zone shows in the stored
// instant. TestServiceStoresValidReadingsAndPoisonsBadOnes covers the
// default zone, UTC, under a session zone set with the timezone URL
// parameter; this one sets it with options, as libpq users do.
const (
	badInputZone        = "America/St_Johns" // -03:30, -02:30 in summer
	badInputSessionZone = "Asia/Kathmandu"   // +05:45
)

// badInput is one stream entry TestBadInput sends, and what must become of
// it: poisoned once with reason, or stored as want.
type badInput struct {
	name string
	// payload is the entry's field payload, unless fields is set.
	payload string
	// fields, when set, are the entry's fields instead, in order: for
	// entries without a payload field, or with more than it.
	fields []any
	// reason is the poison reason expected; "" when the input is valid.
	reason string
	// want are the rows a valid input stores, exactly.
	want []storedRow
	// large inputs are sent after the others, while the service's memory is
	// watched.
	large bool
}

// storedRow is one row of table readings.
type storedRow struct {
	station, sensor string
	ts              time.Time
	value           float64
	unit            string
}

// outcome names a case's subtest by what must happen to it.
func (c badInput) outcome() string {
	if c.reason == "" {
		return "stored"
	}
	return "poisoned_" + c.reason
}

// sent returns what the entry sent in the field the service reads a
// message from, or false for an entry without such a field.
func (c badInput) sent() (string, bool) {
	if c.fields == nil {
		return c.payload, true
	}
	for _, name := range redis.PayloadFields {
		for i := 0; i+1 < len(c.fields); i += 2 {
			if c.fields[i] == name {
				return c.fields[i+1].(string), true
			}
		}
	}
	return "", false
}

func (c badInput) values() []any {
	if c.fields != nil {
		return c.fields
	}
	return []any{"payload", c.payload}
}

// referenceWith returns the reference reading (a temperature of 14 °C at
// 2024-12-01T12:00:00Z, station left to the default) with members added at
// the end, such as `, "station": "roof"`.
func referenceWith(members string) string {
	return `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01T12:00:00Z"` + members + `}`
}

// temperatureValue returns a temperature reading at 2024-12-01T12:00:00Z
// whose value member is the JSON text value.
func temperatureValue(value string) string {
	return `{"sensor": "temperature", "value": ` + value + `, "timestamp": "2024-12-01T12:00:00Z"}`
}

// temperatureAt returns a temperature reading of 14 whose timestamp member is
// the JSON text ts.
func temperatureAt(ts string) string {
	return `{"sensor": "temperature", "value": 14, "timestamp": ` + ts + `}`
}

// padded pads a JSON text with trailing spaces to n bytes.
func padded(payload string, n int) string { return payload + strings.Repeat(" ", n-len(payload)) }

// badInputs returns the cases of TestBadInput. now is the server clock, for
// the write window; zone is badInputZone.
func badInputs(now time.Time, zone *time.Location) []badInput {
	const maxBytes = sensorhub.DefaultMaxMessageBytes
	utc := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return ts
	}
	noon := utc("2024-12-01T12:00:00Z")
	temperature := func(station string, ts time.Time, value float64) []storedRow {
		return []storedRow{{station, "temperature", ts, value, "Cel"}}
	}
	soon := now.Add(5 * time.Minute).Truncate(time.Second)
	late := now.Add(sensorhub.DefaultMaxFuture + time.Minute).Truncate(time.Second)

	cases := []badInput{
		// Malformed and truncated JSON.
		{name: "not JSON", payload: `not json`, reason: sensorhub.ReasonInvalidJSON},
		{name: "truncated in a string", payload: `{"sensor": "temperature", "value": 14, "timestamp": "2024-12`, reason: sensorhub.ReasonInvalidJSON},
		{name: "truncated after a key", payload: `{"sensor"`, reason: sensorhub.ReasonInvalidJSON},
		{name: "truncated before the closing brace", payload: strings.TrimSuffix(referenceWith(""), "}"), reason: sensorhub.ReasonInvalidJSON},
		{name: "opening brace only", payload: `{`, reason: sensorhub.ReasonInvalidJSON},
		{name: "truncated batch", payload: `[` + referenceWith("") + `, {"sensor": "humid`, reason: sensorhub.ReasonInvalidJSON},
		{name: "trailing comma", payload: referenceWith(`, `), reason: sensorhub.ReasonInvalidJSON},
		{name: "single quotes", payload: `{'sensor': 'temperature', 'value': 14, 'timestamp': '2024-12-01T12:00:00Z'}`, reason: sensorhub.ReasonInvalidJSON},
		{name: "unquoted keys", payload: `{sensor: "temperature", value: 14, timestamp: "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonInvalidJSON},
		{name: "two objects", payload: referenceWith("") + referenceWith(""), reason: sensorhub.ReasonInvalidJSON},
		{name: "trailing garbage", payload: referenceWith("") + ` x`, reason: sensorhub.ReasonInvalidJSON},
		{name: "byte order mark", payload: "\ufeff" + referenceWith(""), reason: sensorhub.ReasonInvalidJSON},
		{name: "escaped lone surrogate", payload: referenceWith(`, "station": "roof\ud800"`), reason: sensorhub.ReasonInvalidJSON},

		// Top levels other than an object or an array of objects.
		{name: "empty array", payload: `[]`, reason: sensorhub.ReasonEmptyBatch},
		{name: "array of numbers", payload: `[1, 2, 3]`, reason: sensorhub.ReasonNotObject},
		{name: "array of strings", payload: `["temperature", "14"]`, reason: sensorhub.ReasonNotObject},
		{name: "batch with a null element", payload: `[` + referenceWith(`, "station": "batch-null"`) + `, null]`, reason: sensorhub.ReasonNotObject},
		{name: "string", payload: `"temperature 14"`, reason: sensorhub.ReasonNotObject},
		{name: "number", payload: `14`, reason: sensorhub.ReasonNotObject},
		{name: "negative float", payload: ` -1.5e3 `, reason: sensorhub.ReasonNotObject},
		{name: "null", payload: `null`, reason: sensorhub.ReasonNotObject},
		{name: "true", payload: `true`, reason: sensorhub.ReasonNotObject},

		// Wrong types.
		{name: "value as string", payload: temperatureValue(`"hot"`), reason: sensorhub.ReasonInvalidField},
		{name: "value as hexadecimal string", payload: temperatureValue(`"0x1p3"`), reason: sensorhub.ReasonInvalidField}, // "14" is read as 14
		{name: "value as bool", payload: temperatureValue(`true`), reason: sensorhub.ReasonInvalidField},
		{name: "value as object", payload: temperatureValue(`{"celsius": 14}`), reason: sensorhub.ReasonInvalidField},
		{name: "value as array", payload: temperatureValue(`[14]`), reason: sensorhub.ReasonInvalidField},
		{name: "sensor as number", payload: `{"sensor": 1, "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonInvalidField},
		{name: "sensor as array", payload: `{"sensor": ["temperature"], "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonInvalidField},
		{name: "station as number", payload: referenceWith(`, "station": 7`), reason: sensorhub.ReasonInvalidField},
		{name: "unit as number", payload: referenceWith(`, "unit": 1`), reason: sensorhub.ReasonInvalidField},
		{name: "id as object", payload: referenceWith(`, "id": {}`), reason: sensorhub.ReasonInvalidField},
		{name: "timestamp as bool", payload: temperatureAt(`true`), reason: sensorhub.ReasonInvalidTimestamp},
		{name: "timestamp as object", payload: temperatureAt(`{"unix": 1733054400}`), reason: sensorhub.ReasonInvalidTimestamp},
		{name: "timestamp as numeric string", payload: temperatureAt(`"1733054400"`), reason: sensorhub.ReasonInvalidTimestamp},

		// Missing fields.
		{name: "empty object", payload: `{}`, reason: sensorhub.ReasonMissingField},
		{name: "no sensor", payload: `{"value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonMissingField},
		{name: "empty sensor", payload: `{"sensor": "", "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonMissingField},
		{name: "no value", payload: `{"sensor": "temperature", "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonMissingField},
		{name: "null value", payload: temperatureValue(`null`), reason: sensorhub.ReasonMissingField},
		{name: "no timestamp", payload: `{"sensor": "temperature", "value": 14}`, reason: sensorhub.ReasonMissingField},
		{name: "keys in the wrong case", payload: `{"Sensor": "temperature", "Value": 14, "Timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonMissingField},
		{name: "second reading of a batch without value", payload: `[` + referenceWith(`, "station": "batch-missing"`) + `, {"sensor": "temperature", "timestamp": "2024-12-01T12:00:01Z"}]`, reason: sensorhub.ReasonMissingField},

		// Duplicate keys.
		{name: "value twice", payload: `{"sensor": "temperature", "value": 14, "value": 15, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonDuplicateKey},
		{name: "same key and value twice", payload: referenceWith(`, "station": "dup", "station": "dup"`), reason: sensorhub.ReasonDuplicateKey},
		{name: "duplicate spelled with an escape", payload: `{"sensor": "temperature", "sens\u006fr": "humidity", "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonDuplicateKey},
		{name: "duplicate in an unknown member", payload: referenceWith(`, "station": "dup-meta", "meta": {"a": 1, "a": 2}`), reason: sensorhub.ReasonDuplicateKey},
		{name: "duplicate in the second reading of a batch", payload: `[` + referenceWith(`, "station": "dup-batch"`) + `, {"sensor": "temperature", "value": 1, "value": 2, "timestamp": "2024-12-01T12:00:01Z"}]`, reason: sensorhub.ReasonDuplicateKey},

		// Nesting 10,000 deep: encoding/json/v2 allows depth 10,000.
		{name: "10,000 nested arrays", payload: strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000), reason: sensorhub.ReasonNotObject},
		{name: "10,000 unclosed arrays", payload: strings.Repeat("[", 10_000), reason: sensorhub.ReasonInvalidJSON},
		{name: "10,001 nested arrays", payload: strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001), reason: sensorhub.ReasonInvalidJSON},
		{name: "10,000 nested objects", payload: strings.Repeat(`{"a":`, 10_000) + `1` + strings.Repeat("}", 10_000), reason: sensorhub.ReasonMissingField},
		{name: "value nested 10,000 deep", payload: temperatureValue(strings.Repeat("[", 9_999) + "14" + strings.Repeat("]", 9_999)), reason: sensorhub.ReasonInvalidField},
		{name: "unknown member nested past depth 10,000", payload: referenceWith(`, "station": "deep-10001", "meta": ` + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)), reason: sensorhub.ReasonInvalidJSON},
		{name: "unknown member nested to depth 10,000", payload: referenceWith(`, "station": "deep-10000", "meta": ` + strings.Repeat("[", 9_999) + strings.Repeat("]", 9_999)),
			want: temperature("deep-10000", noon, 14)},

		// Empty payloads.
		{name: "empty payload", payload: ``, reason: sensorhub.ReasonInvalidJSON},
		{name: "whitespace only", payload: " \t\r\n ", reason: sensorhub.ReasonInvalidJSON},

		// Entries without a payload field, and binary garbage.
		{name: "entry of reading fields", fields: []any{"sensor", "temperature", "value", "14", "timestamp", "2024-12-01T12:00:00Z"}, reason: sensorhub.ReasonUnsupportedEntry},
		{name: "entry of one empty field", fields: []any{"", ""}, reason: sensorhub.ReasonUnsupportedEntry},
		{name: "entry of binary field names", fields: []any{"\xff\xfe\x00", "\x00\x01", "pay\x00load", referenceWith("")}, reason: sensorhub.ReasonUnsupportedEntry},
		{name: "entry with payload in upper case", fields: []any{"PAYLOAD", referenceWith("")}, reason: sensorhub.ReasonUnsupportedEntry},
		{name: "empty payload field wins over data", fields: []any{"data", referenceWith(`, "station": "data-ignored"`), "payload", ""}, reason: sensorhub.ReasonInvalidJSON},
		{name: "entry with data field", fields: []any{"data", referenceWith(`, "station": "data-field"`)}, want: temperature("data-field", noon, 14)},
		{name: "watermill entry with corrupt metadata", fields: []any{"_watermill_message_uuid", "not-a-uuid", "metadata", "\xc1\xff", "payload", referenceWith(`, "station": "wm-corrupt"`)},
			want: temperature("wm-corrupt", noon, 14)},
		{name: "binary garbage", payload: "\xff\xfe\xfd\xfc\x80\x81", reason: sensorhub.ReasonInvalidUTF8},
		{name: "binary garbage with NUL", payload: "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", reason: sensorhub.ReasonNULByte},
		{name: "NUL alone", payload: "\x00", reason: sensorhub.ReasonNULByte},
		{name: "NUL after the object", payload: referenceWith("") + "\x00", reason: sensorhub.ReasonNULByte},
		{name: "overlong UTF-8", payload: referenceWith(`, "station": "roof` + "\xc0\xaf" + `"`), reason: sensorhub.ReasonInvalidUTF8},
		{name: "UTF-8 encoded surrogate", payload: referenceWith(`, "station": "roof` + "\xed\xa0\x80" + `"`), reason: sensorhub.ReasonInvalidUTF8},
		{name: "latin-1", payload: referenceWith(`, "station": "dach_s` + "\xfc" + `d"`), reason: sensorhub.ReasonInvalidUTF8},

		// NaN, Infinity and 1e400, as JSON tokens and as strings.
		{name: "NaN token", payload: temperatureValue(`NaN`), reason: sensorhub.ReasonInvalidJSON},
		{name: "Infinity token", payload: temperatureValue(`Infinity`), reason: sensorhub.ReasonInvalidJSON},
		{name: "-Infinity token", payload: temperatureValue(`-Infinity`), reason: sensorhub.ReasonInvalidJSON},
		{name: "NaN string", payload: temperatureValue(`"NaN"`), reason: sensorhub.ReasonInvalidField},
		{name: "Infinity string", payload: temperatureValue(`"Infinity"`), reason: sensorhub.ReasonInvalidField},
		{name: "1e400 string", payload: temperatureValue(`"1e400"`), reason: sensorhub.ReasonValueNotFinite}, // read as the number 1e400
		{name: "1e400", payload: temperatureValue(`1e400`), reason: sensorhub.ReasonValueNotFinite},
		{name: "-1e400", payload: temperatureValue(`-1e400`), reason: sensorhub.ReasonValueNotFinite},
		{name: "400-digit integer", payload: temperatureValue("1" + strings.Repeat("0", 400)), reason: sensorhub.ReasonValueNotFinite},
		{name: "finite value infinite in the canonical unit", payload: `{"sensor": "temperature", "value": 1.7976931348623157e308, "unit": "degF", "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonValueNotFinite},
		{name: "largest float64", payload: temperatureValue(`1.7976931348623157e308`), reason: sensorhub.ReasonValueOutOfRange},
		{name: "1e-400 is zero", payload: `{"sensor": "temperature", "value": 1e-400, "timestamp": "2024-12-01T12:00:00Z", "station": "underflow"}`,
			want: temperature("underflow", noon, 0)},
		{name: "timestamp NaN token", payload: temperatureAt(`NaN`), reason: sensorhub.ReasonInvalidJSON},
		{name: "timestamp 1e400", payload: temperatureAt(`1e400`), reason: sensorhub.ReasonInvalidTimestamp},
		{name: "timestamp Infinity string", payload: temperatureAt(`"Infinity"`), reason: sensorhub.ReasonInvalidTimestamp},

		// Device times: zone-less ones read in SENSORHUB_TIMEZONE whatever
		// the session zone, the rest exact; the window; leap seconds.
		{name: "zone-less in winter", payload: `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}`,
			want: temperature(sensorhub.DefaultStation, time.Date(2024, 12, 1, 12, 0, 0, 0, zone), 14)},
		{name: "zone-less in summer", payload: `{"sensor": "humidity", "value": 55, "timestamp": "2024-07-01 12:00:00", "station": "tz-summer"}`,
			want: []storedRow{{"tz-summer", "humidity", time.Date(2024, 7, 1, 12, 0, 0, 0, zone), 55, "%RH"}}},
		{name: "zone-less with T and milliseconds", payload: `{"sensor": "temperature", "value": -3.25, "timestamp": "2024-12-01T23:59:59.250", "station": "tz-millis"}`,
			want: temperature("tz-millis", time.Date(2024, 12, 1, 23, 59, 59, 250e6, zone), -3.25)},
		{name: "offset wins over the zone", payload: `{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01T12:00:00+05:45", "station": "tz-offset"}`,
			want: temperature("tz-offset", utc("2024-12-01T06:15:00Z"), 14)},
		{name: "Unix milliseconds", payload: `{"sensor": "temperature", "value": 14, "timestamp": 1733054400123, "station": "tz-unix"}`,
			want: temperature("tz-unix", utc("2024-12-01T12:00:00.123Z"), 14)},
		{name: "five minutes ahead", payload: `{"sensor": "temperature", "value": 14, "timestamp": "` + soon.Format(time.RFC3339) + `", "station": "future-ok"}`,
			want: temperature("future-ok", soon, 14)},
		{name: "past the window ahead", payload: temperatureAt(`"` + late.Format(time.RFC3339) + `"`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "year 9999", payload: temperatureAt(`"9999-12-31T23:59:59Z"`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "year 9999 zone-less", payload: temperatureAt(`"9999-12-31 23:59:59"`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "year 10000", payload: temperatureAt(`"10000-01-01T00:00:00Z"`), reason: sensorhub.ReasonInvalidTimestamp},
		{name: "1e300 seconds", payload: temperatureAt(`1e300`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "year 0001", payload: temperatureAt(`"0001-01-01T00:00:00Z"`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "year 0001 zone-less", payload: temperatureAt(`"0001-01-01 00:00:00"`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "year 0000", payload: temperatureAt(`"0000-01-01T00:00:00Z"`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "before 1970", payload: temperatureAt(`"1969-12-31T23:59:59Z"`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "negative Unix seconds", payload: temperatureAt(`-1`), reason: sensorhub.ReasonTimestampOutOfWindow},
		{name: "leap second zone-less", payload: temperatureAt(`"2016-12-31 23:59:60"`), reason: sensorhub.ReasonInvalidTimestamp},
		{name: "leap second RFC 3339", payload: temperatureAt(`"2016-12-31T23:59:60Z"`), reason: sensorhub.ReasonInvalidTimestamp},
		{name: "hour 24", payload: temperatureAt(`"2024-12-01 24:00:00"`), reason: sensorhub.ReasonInvalidTimestamp},
		{name: "February 30", payload: temperatureAt(`"2024-02-30 12:00:00"`), reason: sensorhub.ReasonInvalidTimestamp},

		// Other strings: the unit must be known, the id is free text.
		{name: "unit with an injection", payload: referenceWith(`, "unit": "Cel'; DROP TABLE readings;--"`), reason: sensorhub.ReasonUnknownUnit},
		{name: "unit of 33 characters", payload: referenceWith(`, "unit": "` + strings.Repeat("u", 33) + `"`), reason: sensorhub.ReasonInvalidField},
		{name: "id of 10,000 characters", payload: referenceWith(`, "id": "` + strings.Repeat("i", 10_000) + `"`), reason: sensorhub.ReasonInvalidField},
		{name: "id of quotes, placeholders, comments, NUL and RTL", payload: referenceWith(`, "station": "id-free-text", "id": "x'; DROP TABLE readings;-- \" \\ $1 %s %% \u0000 ` + "\u202e" + `"`),
			want: temperature("id-free-text", noon, 14)},
		{name: "unknown sensor type", payload: `{"sensor": "warp_core", "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonUnknownSensor},
		{name: "station of 64 characters of every kind allowed", payload: referenceWith(`, "station": "` + "Aa0_.:-" + strings.Repeat("z", 57) + `"`),
			want: temperature("Aa0_.:-"+strings.Repeat("z", 57), noon, 14)},
		{name: "batch of two", payload: `[` + referenceWith(`, "station": "batch-ok"`) + `, {"sensor": "pressure", "value": 1013.25, "unit": "mbar", "timestamp": 1733054400, "station": "batch-ok"}]`,
			want: []storedRow{{"batch-ok", "temperature", noon, 14, "Cel"}, {"batch-ok", "pressure", noon, 1013.25, "hPa"}}},

		// Sizes: the limit is on the payload's raw bytes, and on every
		// field of a stream entry. Each oversized shape comes one byte
		// over the limit with the rest, and large while memory is watched.
		{name: "exactly the limit", payload: padded(referenceWith(`, "station": "size-limit"`), maxBytes), want: temperature("size-limit", noon, 14)},
		{name: "the limit of leading whitespace then a reading", payload: strings.Repeat(" ", maxBytes-len(referenceWith(`, "station": "size-lead"`))) + referenceWith(`, "station": "size-lead"`),
			want: temperature("size-lead", noon, 14)},
		{name: "the limit of whitespace", payload: strings.Repeat(" ", maxBytes), reason: sensorhub.ReasonInvalidJSON},
		{name: "one byte over the limit", payload: padded(referenceWith(`, "station": "size-over"`), maxBytes+1), reason: sensorhub.ReasonTooLarge},
		{name: "a field one byte over the limit beside a valid payload", fields: []any{"payload", referenceWith(`, "station": "size-over-beside"`), "padding", strings.Repeat("x", maxBytes+1)},
			reason: sensorhub.ReasonTooLarge},
		{name: "a field name one byte over the limit", fields: []any{strings.Repeat("n", maxBytes+1), "x"}, reason: sensorhub.ReasonTooLarge},
		{name: "4 MiB", payload: strings.Repeat("#", 4<<20), reason: sensorhub.ReasonTooLarge, large: true},
		{name: "16 MiB", payload: referenceWith(`, "station": "size-16m", "pad": "` + strings.Repeat("x", 16<<20) + `"`), reason: sensorhub.ReasonTooLarge, large: true},
		{name: "a field of 16 MiB beside a valid payload", fields: []any{"payload", referenceWith(`, "station": "size-16m-beside"`), "padding", strings.Repeat("x", 16<<20)},
			reason: sensorhub.ReasonTooLarge, large: true},
		{name: "a field name of 4 MiB", fields: []any{strings.Repeat("n", 4<<20), "x"}, reason: sensorhub.ReasonTooLarge, large: true},
	}

	// Station and sensor names: the name rules admit letters, digits and
	// a few separators only, so each of these is refused with the rule's
	// own reason, except for raw NUL and invalid UTF-8, which the raw
	// checks refuse first.
	for _, n := range []struct{ name, literal string }{
		{"a quote", `"roof\"1"`},
		{"a single-quote injection", `"x'; DROP TABLE readings;--"`},
		{"a placeholder", `"$1"`},
		{"a comment", `"roof;--"`},
		{"a percent sign", `"roof%"`},
		{"a backslash", `"roof\\1"`},
		{"an escaped NUL", `"roof\u0000"`},
		{"an RTL override", "\"roof\u202e1\""},
		{"an escaped RTL override", `"roof\u202e1"`},
		{"10,000 characters", `"` + strings.Repeat("s", 10_000) + `"`},
	} {
		cases = append(cases,
			badInput{name: "station of " + n.name, payload: referenceWith(`, "station": ` + n.literal), reason: sensorhub.ReasonInvalidStation},
			badInput{name: "sensor of " + n.name, payload: `{"sensor": ` + n.literal + `, "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonInvalidSensor},
		)
	}
	cases = append(cases,
		badInput{name: "station of a raw NUL", payload: referenceWith(`, "station": "roof` + "\x00" + `"`), reason: sensorhub.ReasonNULByte},
		badInput{name: "sensor of a raw NUL", payload: `{"sensor": "temp` + "\x00" + `", "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonNULByte},
		badInput{name: "station of invalid UTF-8", payload: referenceWith(`, "station": "roof` + "\xff" + `"`), reason: sensorhub.ReasonInvalidUTF8},
		badInput{name: "sensor of invalid UTF-8", payload: `{"sensor": "temp` + "\xfe" + `", "value": 14, "timestamp": "2024-12-01T12:00:00Z"}`, reason: sensorhub.ReasonInvalidUTF8},
	)
	return cases
}

// TestBadInput sends bad input of every kind through the whole pipeline,
// the real binary between Redis and PostgreSQL, and checks that each entry
// is poisoned exactly once with its own reason, or stored exactly as sent
// when it is valid; that nothing else in the schema changes; that the
// service keeps running; and that an entry far over the size limit costs
// the service less than twice the limit in memory.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// The outbox forwarder polls at its default interval: a shorter one
	// would only add to the allocations the memory check sees.
	events := e.vars["SENSORHUB_EVENTS_STREAM"]
	zone, err := time.LoadLocation(badInputZone)
	if err != nil {
		t.Fatal(err)
	}
	e.vars["SENSORHUB_TIMEZONE"] = badInputZone
	e.vars["DATABASE_URL"] += "&options=" + strings.ReplaceAll(url.QueryEscape("-c TimeZone="+badInputSessionZone), "+", "%20")
	e.vars["SENSORHUB_LOG_LEVEL"] = "warn"
	// No periodic work (re-reading the station zones, flushing idle series
	// to processors) during the memory measurement below: what it touches
	// would count against the entries, more so on a busy machine where the
	// collector runs late.
	e.vars["SENSORHUB_STATION_REFRESH"] = "1h"
	e.vars["SENSORHUB_REORDER_WINDOW"] = "1h"
	checkSessionZone(t, e, badInputSessionZone)
	proc := e.start(t, "run")
	e.waitHealthy(t)

	// A first reading, so that the outbox forwarder has a position of its
	// own before the tables are counted.
	e.xadd(t, referenceWith(`, "station": "warm-up"`))
	poll.Until(t, 5*time.Second, "the warm-up reading is stored and its event forwarded", func() bool {
		return e.rows(t, "") == 1 && len(e.events(t, events)) == 1 && e.rowCount(t, "watermill_offsets_sensorhub_outbox") == 1
	})
	tablesBefore := e.tableCounts(t)

	cases := badInputs(time.Now(), zone)
	// ids holds the entry id of each case, in the order of cases.
	ids := make([]string, len(cases))
	send := func(large bool) (sent, poisoned, stored int) {
		for i, c := range cases {
			if c.large != large {
				continue
			}
			id, err := e.redis.XAdd(t.Context(), &goredis.XAddArgs{Stream: e.stream, Values: c.values()}).Result()
			if err != nil {
				t.Fatalf("%s: XADD: %v", c.name, err)
			}
			ids[i] = id
			sent++
			if c.reason != "" {
				poisoned++
			}
			stored += len(c.want)
		}
		return sent, poisoned, stored
	}
	wantPoisoned, wantRows := 0, 1
	// settle waits for the entries sent to be poisoned or stored, and
	// acked. When they are not, the cases below tell which went wrong.
	settle := func(what string, poisoned, stored int) {
		t.Helper()
		wantPoisoned += poisoned
		wantRows += stored
		const timeout = 10 * time.Second
		for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
			gotPoisoned := e.redis.XLen(t.Context(), e.stream+sensorhub.PoisonSuffix).Val()
			gotRows := e.rows(t, "")
			pending := e.redis.XPending(t.Context(), e.stream, "sensorhub").Val().Count
			if gotPoisoned >= int64(wantPoisoned) && gotRows >= wantRows && pending == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: after %s, %d entries poisoned, want %d; %d rows, want %d; %d entries pending",
					what, timeout, gotPoisoned, wantPoisoned, gotRows, wantRows, pending)
				return
			}
		}
	}

	start := time.Now()
	sent, poisoned, stored := send(false)
	settle("the bad input", poisoned, stored)
	t.Logf("%d entries, %d poisoned and %d rows, in %s", sent, poisoned, stored, time.Since(start).Round(time.Millisecond))

	// Memory: the baseline is the service after all the input above. It
	// has handled readings at the limit, so its heap has grown to what
	// one costs, and each oversized shape one byte over the limit, so its
	// connections, scripts and code paths are in place: what the large
	// entries add on top is what their size costs. The peak is reset to
	// the baseline, and whatever the service touches while it handles them
	// shows in VmHWM, however briefly. From the peak's growth, the growth
	// of RssFile is taken off: pages of the executable that code run for
	// the first time maps in, 64 KiB at a time (the kernel's fault-around),
	// whenever a timer or the collector happens to take a path new to the
	// process; they are neither data nor anything an entry's size affects.
	proc.resetPeakRSS(t)
	baseline, _ := proc.memory(t)
	codeBefore := proc.statusBytes(t, "RssFile")
	_, poisoned, stored = send(true)
	settle("the oversized input", poisoned, stored)
	rss, peak := proc.memory(t)
	code := max(0, proc.statusBytes(t, "RssFile")-codeBefore)
	growth := peak - baseline - code
	// Forty-eight message limits (3 MiB): below the smallest oversized
	// entry (4 MiB), so reading any of them whole fails the test, while
	// the poison steps of the 30-odd entries (a lookup, an XADD and an
	// XACK each) measured 0–244 KiB under the load of make test, once
	// 620 KiB since reads take up to 1024 entries at a time, and 972 and
	// 1,192 KiB with two runs of the test side by side.
	const limit = 48 * sensorhub.DefaultMaxMessageBytes
	t.Logf("RSS %d KiB before the oversized entries, peak %d KiB (+%d KiB, of which %d KiB pages of the executable) while they were handled, %d KiB after; limit +%d KiB",
		baseline>>10, peak>>10, (peak-baseline)>>10, code>>10, rss>>10, limit>>10)
	if growth >= limit {
		t.Errorf("RSS peaked %d KiB over the baseline of %d KiB (pages of the executable not counted) while handling entries of up to 16 MiB: want less than forty-eight message limits, %d KiB",
			growth>>10, baseline>>10, limit>>10)
	}

	// Each entry: poisoned once, with its reason, its source entry id and
	// the payload as sent; or stored as sent and not poisoned.
	poison := e.poisoned(t)
	bySource := make(map[string][]goredis.XMessage)
	for _, m := range poison {
		id, _ := m.Values[sensorhub.MetadataEntryID].(string)
		if !slices.Contains(ids, id) {
			t.Errorf("poison entry %s names source entry %q, which was not sent: %.200v", m.ID, id, m.Values)
		}
		bySource[id] = append(bySource[id], m)
	}
	for i, c := range cases {
		id := ids[i]
		t.Run(c.outcome()+"/"+c.name, func(t *testing.T) {
			got := bySource[id]
			if c.reason == "" {
				if len(got) != 0 {
					t.Fatalf("valid entry %s poisoned: %.300v", id, got[0].Values)
				}
				for _, want := range c.want {
					checkStored(t, e, want)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("entry %s is in the poison stream %d times, want once", id, len(got))
			}
			v := got[0].Values
			if v[sensorhub.MetadataReason] != c.reason {
				t.Errorf("reason %q, want %q (error: %.300v)", v[sensorhub.MetadataReason], c.reason, v[sensorhub.MetadataError])
			}
			if s, _ := v[sensorhub.MetadataError].(string); s == "" {
				t.Error("poison entry without error text")
			}
			if s, _ := v[sensorhub.MetadataPoisonedAt].(string); s == "" {
				t.Error("poison entry without poisoned_at")
			}
			payload, _ := v["payload"].(string)
			sent, ok := c.sent()
			switch {
			case c.reason == sensorhub.ReasonTooLarge && (!ok || len(sent) > sensorhub.DefaultMaxMessageBytes):
				// The oversized field was never read, so it is not copied.
				if payload != "" {
					t.Errorf("poison entry of an oversized payload holds %d bytes, want none", len(payload))
				}
			case ok && payload != sent:
				t.Errorf("poison entry holds a payload of %d bytes, not the %d bytes sent", len(payload), len(sent))
			case !ok && !json.Valid([]byte(payload)):
				t.Errorf("poison entry of an entry without payload field holds %.200q, want its fields as JSON", payload)
			}
		})
	}
	if len(poison) != wantPoisoned {
		t.Errorf("%d entries in the poison stream, want %d", len(poison), wantPoisoned)
	}

	// Nothing else in the schema changed: the rows added are the valid
	// readings and the events that list them.
	e.xadd(t, referenceWith(`, "station": "after-bad-input"`))
	wantRows++
	poll.Until(t, 5*time.Second, "a good reading after the bad input is stored", func() bool {
		return e.rows(t, `WHERE station = 'after-bad-input'`) == 1
	})
	if n := e.rows(t, ""); n != wantRows {
		t.Errorf("%d rows in readings, want %d", n, wantRows)
	}
	var validKeys []string
	for _, c := range cases {
		for _, r := range c.want {
			validKeys = append(validKeys, fmt.Sprintf("%s/%s/%s", r.station, r.sensor, r.ts.UTC().Format(time.RFC3339)))
		}
	}
	validKeys = append(validKeys, fmt.Sprintf("after-bad-input/temperature/%s", "2024-12-01T12:00:00Z"))
	poll.Until(t, 5*time.Second, "the events of every valid reading are forwarded", func() bool {
		return len(storedReadings(t, distinct(t, e.events(t, events)))) == len(validKeys)+1
	})
	listed := storedReadings(t, distinct(t, e.events(t, events)))
	for _, k := range validKeys {
		if !listed[k] {
			t.Errorf("no readings.stored event lists %s", k)
		}
	}
	tablesAfter := e.tableCounts(t)
	if !slices.Equal(slices.Sorted(maps.Keys(tablesAfter)), slices.Sorted(maps.Keys(tablesBefore))) {
		t.Errorf("tables %v after the bad input, %v before", slices.Sorted(maps.Keys(tablesAfter)), slices.Sorted(maps.Keys(tablesBefore)))
	}
	for table, before := range tablesBefore {
		after := tablesAfter[table]
		switch table {
		case "readings":
			if after != before+int64(len(validKeys)) {
				t.Errorf("readings: %d rows, %d before: want the %d valid readings added", after, before, len(validKeys))
			}
		case "stations":
			// The stations of the valid readings, created on their first
			// one; a poisoned reading creates none.
			newStations := map[string]bool{}
			for _, k := range validKeys {
				if st, _, _ := strings.Cut(k, "/"); st != "warm-up" {
					newStations[st] = true
				}
			}
			if after != before+int64(len(newStations)) {
				t.Errorf("stations: %d rows, %d before: want the %d stations of valid readings added", after, before, len(newStations))
			}
		case "processor_cursors":
			// Each processor (quality control, threshold rules, derived
			// quantities) keeps a cursor per series it watches: only series
			// of valid readings, the warm-up's included.
			series := map[string]bool{"warm-up/temperature": true}
			for _, k := range validKeys {
				station, rest, _ := strings.Cut(k, "/")
				sensor, _, _ := strings.Cut(rest, "/")
				series[station+"/"+sensor] = true
			}
			rows, err := e.db.Pool.Query(t.Context(), `SELECT processor || ' ' || station || '/' || sensor FROM processor_cursors`)
			if err != nil {
				t.Fatal(err)
			}
			cursors, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cursors {
				if _, s, _ := strings.Cut(c, " "); !series[s] {
					t.Errorf("processor cursor %s: not a series of a valid reading", c)
				}
			}
			if after < before {
				t.Errorf("processor_cursors: %d rows, %d before", after, before)
			}
		case "reading_series":
			// A row per series with a stored reading (derived ones
			// included): a poisoned reading adds none.
			var series, stray int64
			if err := e.db.Pool.QueryRow(t.Context(), `SELECT
				(SELECT count(*) FROM (SELECT DISTINCT station, sensor FROM readings) s),
				(SELECT count(*) FROM reading_series s
				 WHERE NOT EXISTS (SELECT FROM readings r WHERE r.station = s.station AND r.sensor = s.sensor))`).Scan(&series, &stray); err != nil {
				t.Fatal(err)
			}
			if after != series || stray != 0 {
				t.Errorf("reading_series: %d rows, %d of them without a stored reading, for %d series stored", after, stray, series)
			}
		case "readings_5m", "readings_1h", "readings_1d", "rollup_invalidations", "rollup_settings":
			// The rollups of the valid readings: checked below.
		case "watermill_sensorhub_outbox":
			// One event per commit: group commit may join messages.
			if added := after - before; added < 1 || added > int64(len(validKeys)) {
				t.Errorf("outbox: %d events added for %d valid readings", added, len(validKeys))
			}
		default:
			if after != before {
				t.Errorf("%s: %d rows, %d before the bad input", table, after, before)
			}
		}
	}

	// The rollups are those of the stored readings, and poisoned entries
	// added none, whatever the session's zone.
	rolluptest.Settle(t, t.Context(), e.db.Pool, time.Minute)
	rolluptest.Check(t, t.Context(), e.db.Pool, badInputZone, handlers.Builtin())

	// Still running and healthy, nothing pending, nothing poisoned twice.
	proc.alive(t)
	e.waitHealthy(t)
	if n := e.redis.XPending(t.Context(), e.stream, "sensorhub").Val().Count; n != 0 {
		t.Errorf("%d entries pending", n)
	}
	if n := e.redis.XLen(t.Context(), e.stream+sensorhub.PoisonSuffix).Val(); n != int64(wantPoisoned) {
		t.Errorf("%d entries in the poison stream at the end, want %d", n, wantPoisoned)
	}
	// Oversized entries are poisoned by the subscriber, before the hub:
	// its own counter tells them.
	tooLarge := 0
	for _, c := range cases {
		if c.reason == sensorhub.ReasonTooLarge {
			tooLarge++
		}
	}
	if _, samples := e.scrapeMetrics(t); samples[`sensorhub_redis_entries_poisoned_total{reason="too_large"}`] != float64(tooLarge) {
		t.Errorf("sensorhub_redis_entries_poisoned_total{reason=\"too_large\"} = %v, want the %d oversized cases",
			samples[`sensorhub_redis_entries_poisoned_total{reason="too_large"}`], tooLarge)
	}
	if logs := proc.logs.String(); len(logs) > 1<<20 {
		t.Errorf("the service logged %d bytes: payloads must not be logged whole", len(logs))
	}
}

// checkSessionZone checks that a connection made with the service's
// DATABASE_URL runs in zone, so that the test does test a session zone.
func checkSessionZone(t *testing.T, e *testEnv, zone string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), e.vars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var got string
	if err := conn.QueryRow(t.Context(), "SHOW TimeZone").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != zone {
		t.Fatalf("DATABASE_URL gives sessions in zone %s, want %s", got, zone)
	}
}

// checkStored checks that want is in readings, once, as it is.
func checkStored(t *testing.T, e *testEnv, want storedRow) {
	t.Helper()
	rows, err := e.db.Pool.Query(t.Context(),
		`SELECT station, sensor, ts, value, unit FROM readings WHERE station = $1 AND sensor = $2`, want.station, want.sensor)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedRow, error) {
		var r storedRow
		return r, row.Scan(&r.station, &r.sensor, &r.ts, &r.value, &r.unit)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].ts.Equal(want.ts) || got[0].value != want.value || got[0].unit != want.unit {
		t.Errorf("stored %+v, want exactly %+v", got, want)
	}
}
