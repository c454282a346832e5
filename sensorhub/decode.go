package sensorhub

import (
	"bytes"
	"cmp"
	"encoding/json/jsontext"
	json "encoding/json/v2"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// Decoder defaults, used where a DecoderConfig field is zero.
const (
	DefaultMaxMessageBytes = 64 << 10
	DefaultStation         = "default"
	DefaultMaxFuture       = 10 * time.Minute
)

// DefaultMinTime is the earliest device time accepted by default. Backfills
// of old data are legitimate, so the window reaches back to the Unix epoch.
var DefaultMinTime = time.Unix(0, 0).UTC()

// DecoderConfig controls how raw messages are decoded and validated. The zero
// value is usable: every zero field takes the default its comment names.
//
// A value is a JSON number, or a JSON string holding exactly a JSON number
// ("14.5", "-1e3"), as producers often send decimals (Python's Decimal):
// no white space, sign "+", hexadecimal, "NaN" or "Inf" inside; any other
// string ("hot") is ReasonInvalidField.
//
// A timestamp is a Unix time in seconds or milliseconds as a JSON number,
// or a string of one of these shapes, each with or without a fraction of
// up to nine digits after the seconds:
//
//	2024-12-01T12:00:00Z                RFC 3339 (JavaScript's toISOString, Go's time.RFC3339Nano)
//	2024-12-01T13:00:00+01:00           RFC 3339 (Python's isoformat of an aware datetime)
//	2024-12-01 13:00:00+01:00           RFC 3339 with a space for the T (Python's str)
//	2024-12-01T13:00:00+01:00:30        an offset in seconds (Python's isoformat)
//	2024-12-01 13:00:00 +0100 CET       Go's time.Time.String, also with its " m=+1.5" suffix
//	2024-12-01 13:00:00                 no offset (the legacy form, Python's str of a naive datetime)
//	2024-12-01T13:00:00                 no offset (Python's isoformat of a naive datetime)
//
// An offset decides the instant; Go's zone abbreviation after it is not
// checked. A time without an offset is read in its station's zone (Zones)
// or else in Location;
// when that zone skips or repeats its wall clock (a daylight-saving
// change: 02:30 on the last Sunday of March or October in Europe/Berlin),
// the reading is refused with ReasonAmbiguousLocalTime rather than stored
// an hour off. RFC 3339's lower-case "t" and "z" are refused, as are leap
// seconds (no instant of their own).
type DecoderConfig struct {
	// MaxMessageBytes bounds the size of one raw message.
	// Default DefaultMaxMessageBytes (64 KiB).
	MaxMessageBytes int
	// Location is the zone in which timestamps without an offset
	// ("2024-12-01 12:00:00") are read; a wall clock it skips or shows
	// twice is refused (see above). Default UTC.
	Location *time.Location
	// Zones, if set, gives stations zones of their own: a time without an
	// offset from a station for which it returns a zone is read in that
	// zone instead of Location. It is asked once per reading on the
	// message path, so it must answer from memory, and be safe for
	// concurrent use. Default nil: every station uses Location.
	Zones Zones
	// DefaultStation is the station of readings that name none.
	// Default DefaultStation ("default").
	DefaultStation string
	// MinTime is the earliest accepted device time. Default DefaultMinTime
	// (1970-01-01T00:00:00Z).
	MinTime time.Time
	// MaxFuture is how far ahead of the server clock a device time may be.
	// Default DefaultMaxFuture (10 minutes).
	MaxFuture time.Duration
	// Now returns the server clock. Default time.Now.
	Now func() time.Time
}

func (c *DecoderConfig) setDefaults() {
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, DefaultMaxMessageBytes)
	if c.Location == nil {
		c.Location = time.UTC
	}
	c.DefaultStation = cmp.Or(c.DefaultStation, DefaultStation)
	if c.MinTime.IsZero() {
		c.MinTime = DefaultMinTime
	}
	c.MaxFuture = cmp.Or(c.MaxFuture, DefaultMaxFuture)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with the configuration at once.
func (c DecoderConfig) Validate() error {
	var errs []error
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("max message bytes must not be negative, got %d", c.MaxMessageBytes))
	}
	if c.MaxFuture < 0 {
		errs = append(errs, fmt.Errorf("max future must not be negative, got %s", c.MaxFuture))
	}
	if c.DefaultStation != "" && !stationName.match(c.DefaultStation) {
		errs = append(errs, fmt.Errorf("default station %q does not match %s", c.DefaultStation, stationName))
	}
	return errors.Join(errs...)
}

// Zones looks up the zone of a station's times without an offset.
type Zones interface {
	// Zone returns station's zone, or nil when the station has none of
	// its own and follows DecoderConfig.Location.
	Zone(station string) *time.Location
	// Err is not nil while the zones are unknown (their source was never
	// read, say the database is down at start-up). Messages then wait,
	// retried as in a database outage, rather than be read in a wrong
	// zone.
	Err() error
}

// input is a decoded reading before its sensor type has validated and
// converted it: Value is in Unit as sent, and Unit is empty when the message
// named none.
type input struct {
	// Index is the reading's position in a batch, or -1 for a message
	// that is a single object.
	Index   int
	Station string
	Sensor  string
	Time    time.Time
	Value   float64
	Unit    string
	ID      string
}

// wireReading is one reading as it arrives. Value and Timestamp stay raw so
// that their errors can be told apart precisely (a string value, a number too
// large for float64, a timestamp of either kind).
type wireReading struct {
	Sensor    string         `json:"sensor" validate:"required,sensor_name"`
	Value     jsontext.Value `json:"value"`
	Timestamp jsontext.Value `json:"timestamp"`
	Station   string         `json:"station" validate:"omitempty,station_name"`
	Unit      string         `json:"unit" validate:"max=32"`
	ID        string         `json:"id" validate:"max=256"`
}

// decoder turns raw message bytes into inputs, enforcing the message
// contract: size, UTF-8, no NUL, no duplicate keys, required fields, name
// rules, finite values and the time window. It is safe for concurrent use.
type decoder struct {
	cfg      DecoderConfig
	validate *validator.Validate
}

// newDecoder returns a decoder for cfg, with defaults filled in.
func newDecoder(cfg DecoderConfig) (*decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sensorhub: decoder config: %w", err)
	}
	cfg.setDefaults()
	v := validator.New(validator.WithRequiredStructEnabled())
	// Report JSON field names, not Go ones, in errors.
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	for tag, rule := range map[string]*nameRule{"sensor_name": sensorName, "station_name": stationName} {
		if err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			return rule.match(fl.Field().String())
		}); err != nil {
			return nil, fmt.Errorf("sensorhub: register %s rule: %w", tag, err)
		}
	}
	return &decoder{cfg: cfg, validate: v}, nil
}

// Decode checks and decodes one raw message: a JSON object, or a JSON array
// of objects (a batch). Any problem yields an *InputError naming the reason,
// the offending reading's index in a batch and the field.
func (d *decoder) Decode(payload []byte) ([]input, error) {
	if err := d.checkRaw(payload); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &InputError{Reason: ReasonInvalidJSON, Index: -1, Err: errors.New("empty payload")}
	}
	// Pointers, so that a null element of a batch is told apart from an
	// empty object.
	var wires []*wireReading
	switch trimmed[0] {
	case '{':
		wires = []*wireReading{new(wireReading)}
		if err := json.Unmarshal(payload, wires[0]); err != nil {
			return nil, jsonError(payload, err, false)
		}
	case '[':
		if err := json.Unmarshal(payload, &wires); err != nil {
			return nil, jsonError(payload, err, true)
		}
		if len(wires) == 0 {
			return nil, &InputError{Reason: ReasonEmptyBatch, Index: -1, Err: errors.New("batch holds no readings")}
		}
	default:
		if err := json.Unmarshal(payload, new(jsontext.Value)); err != nil {
			return nil, jsonError(payload, err, false)
		}
		return nil, &InputError{Reason: ReasonNotObject, Index: -1, Err: errors.New("payload is neither a JSON object nor an array of objects")}
	}
	if d.cfg.Zones != nil {
		if err := d.cfg.Zones.Err(); err != nil {
			return nil, &outageError{fmt.Errorf("sensorhub: station zones unknown: %w", err)}
		}
	}
	inputs := make([]input, len(wires))
	for i, w := range wires {
		if w == nil {
			return nil, &InputError{Reason: ReasonNotObject, Index: i, Err: errors.New("batch element is null, not an object")}
		}
		in, err := d.convert(w)
		if trimmed[0] == '[' {
			in.Index = i
			if err != nil {
				err.Index = i
			}
		}
		if err != nil {
			return nil, err
		}
		inputs[i] = in
	}
	return inputs, nil
}

// checkRaw applies the checks that run on raw bytes, before any parsing.
func (d *decoder) checkRaw(payload []byte) *InputError {
	if len(payload) > d.cfg.MaxMessageBytes {
		return &InputError{Reason: ReasonTooLarge, Index: -1,
			Err: fmt.Errorf("message is %d bytes, limit %d", len(payload), d.cfg.MaxMessageBytes)}
	}
	if i := bytes.IndexByte(payload, 0); i >= 0 {
		return &InputError{Reason: ReasonNULByte, Index: -1, Err: fmt.Errorf("NUL byte at offset %d", i)}
	}
	if !utf8.Valid(payload) {
		return &InputError{Reason: ReasonInvalidUTF8, Index: -1, Err: errors.New("message is not valid UTF-8")}
	}
	return nil
}

// convert validates one wire reading and turns it into an input.
func (d *decoder) convert(w *wireReading) (input, *InputError) {
	if err := d.validate.Struct(w); err != nil {
		return input{}, validationError(err)
	}
	value, err := parseValue(w.Value)
	if err != nil {
		return input{}, err
	}
	station := w.Station
	if station == "" {
		station = d.cfg.DefaultStation
	}
	ts, err := d.parseTime(w.Timestamp, d.zone(station))
	if err != nil {
		return input{}, err
	}
	return input{Index: -1, Station: station, Sensor: w.Sensor, Time: ts, Value: value, Unit: w.Unit, ID: w.ID}, nil
}

// zone is the zone of station's times without an offset (DESIGN.md §10).
func (d *decoder) zone(station string) *time.Location {
	if d.cfg.Zones != nil {
		if loc := d.cfg.Zones.Zone(station); loc != nil {
			return loc
		}
	}
	return d.cfg.Location
}

// parseValue reads the value: a JSON number, or a JSON string holding
// exactly one (see DecoderConfig).
func parseValue(raw jsontext.Value) (float64, *InputError) {
	text := []byte(raw)
	switch raw.Kind() {
	case 0, 'n':
		return 0, &InputError{Reason: ReasonMissingField, Index: -1, Field: "value", Err: errors.New("value is required")}
	case '0':
	case '"':
		var ok bool
		if text, ok = numberInString(raw); !ok {
			return 0, &InputError{Reason: ReasonInvalidField, Index: -1, Field: "value",
				Err: fmt.Errorf("value must be a number or a string holding one, got string %.80s", raw)}
		}
	default:
		return 0, &InputError{Reason: ReasonInvalidField, Index: -1, Field: "value",
			Err: fmt.Errorf("value must be a number, got %s", raw.Kind())}
	}
	v, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, &InputError{Reason: ReasonValueNotFinite, Index: -1, Field: "value",
			Err: fmt.Errorf("value %s is not a finite float64", raw)}
	}
	return v, nil
}

// numberInString returns the content of the JSON string raw when it is
// exactly a JSON number: "14.5" and "-1e3" are, while " 14", "+14", "0x1p3",
// "NaN", "Inf", "1." and "hot" are not, although strconv.ParseFloat reads
// several of them.
func numberInString(raw jsontext.Value) ([]byte, bool) {
	text := raw[1 : len(raw)-1]
	if bytes.IndexByte(text, '\\') >= 0 {
		var err error
		if text, err = jsontext.AppendUnquote(nil, raw); err != nil {
			return nil, false
		}
	}
	// A JSON value whose first byte is '-' or a digit is a number; the
	// first and last bytes also rule out the white space IsValid allows
	// around a value.
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	ok := len(text) > 0 && (text[0] == '-' || isDigit(text[0])) && isDigit(text[len(text)-1]) &&
		jsontext.Value(text).IsValid()
	return text, ok
}

// unixMillisThreshold separates Unix seconds from milliseconds: 1e11 seconds
// is the year 5138, 1e11 milliseconds is 1973.
const unixMillisThreshold = 1e11

// parseTime reads the timestamp; loc is the zone of a zone-less one.
func (d *decoder) parseTime(raw jsontext.Value, loc *time.Location) (time.Time, *InputError) {
	var ts time.Time
	switch raw.Kind() {
	case 0, 'n':
		return ts, &InputError{Reason: ReasonMissingField, Index: -1, Field: "timestamp", Err: errors.New("timestamp is required")}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ts, &InputError{Reason: ReasonInvalidTimestamp, Index: -1, Field: "timestamp", Err: err}
		}
		var err error
		if ts, err = parseTimeString(s, loc); err != nil {
			reason := ReasonInvalidTimestamp
			if errors.Is(err, errNoSingleInstant) {
				reason = ReasonAmbiguousLocalTime
			}
			return ts, &InputError{Reason: reason, Index: -1, Field: "timestamp", Err: err}
		}
	case '0':
		n, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(n, 0) {
			return ts, &InputError{Reason: ReasonInvalidTimestamp, Index: -1, Field: "timestamp",
				Err: fmt.Errorf("timestamp %s is not a Unix time", raw)}
		}
		var ok bool
		if ts, ok = unixTime(n); !ok {
			return ts, &InputError{Reason: ReasonTimestampOutOfWindow, Index: -1, Field: "timestamp",
				Err: fmt.Errorf("timestamp %s (Unix time) is outside [%s, now + %s]", raw,
					d.cfg.MinTime.UTC().Format(time.RFC3339), d.cfg.MaxFuture)}
		}
	default:
		return ts, &InputError{Reason: ReasonInvalidTimestamp, Index: -1, Field: "timestamp",
			Err: fmt.Errorf("timestamp must be a string or a number, got %s", raw.Kind())}
	}
	now := d.cfg.Now()
	if ts.Before(d.cfg.MinTime) || ts.After(now.Add(d.cfg.MaxFuture)) {
		return ts, &InputError{Reason: ReasonTimestampOutOfWindow, Index: -1, Field: "timestamp",
			Err: fmt.Errorf("%s is outside [%s, now + %s]", ts.UTC().Format(time.RFC3339Nano),
				d.cfg.MinTime.UTC().Format(time.RFC3339), d.cfg.MaxFuture)}
	}
	return ts.UTC(), nil
}

// Layouts of the timestamp shapes listed on DecoderConfig. The shape is told by
// the string's length and a few bytes, so that each string is parsed once,
// with one layout.
const (
	// dateTimeLen is the length of the date and time before any fraction
	// or offset: "2006-01-02T15:04:05".
	dateTimeLen = len("2006-01-02T15:04:05")
	// zonelessT and zonelessSpace read wall clocks; time.Parse reads a
	// fraction of any length after the seconds.
	zonelessT     = "2006-01-02T15:04:05"
	zonelessSpace = "2006-01-02 15:04:05"
	// offsetSeconds is RFC 3339 with an offset in seconds, as Python's
	// isoformat prints one that is not whole minutes.
	offsetSeconds = "2006-01-02T15:04:05.999999999Z07:00:00"
	// goString is time.Time.String's layout up to its zone abbreviation.
	goString = "2006-01-02 15:04:05.999999999 -0700"
)

// parseTimeString reads a timestamp string of one of the shapes listed on
// decoder. The error wraps errNoSingleInstant when a zone-less time names
// no instant, or two, in loc.
func parseTimeString(s string, loc *time.Location) (time.Time, error) {
	ts, err := parseTimeShape(s, loc)
	// A leap second is valid RFC 3339, but neither Go nor PostgreSQL has an
	// instant for it (PostgreSQL would store the next minute's first
	// second, the key of another reading): say so rather than call the
	// syntax wrong.
	if err != nil && len(s) >= dateTimeLen && s[16] == ':' && s[17:19] == "60" {
		if _, err := parseTimeShape(s[:17]+"59"+s[19:], loc); err == nil {
			return time.Time{}, fmt.Errorf("%q is a leap second, which has no instant of its own", s)
		}
	}
	return ts, err
}

// parseTimeShape tells the shape of s by what follows the seconds and any
// fraction (nothing, a space, or an RFC 3339 offset) and parses s with that
// shape's layout alone.
func parseTimeShape(s string, loc *time.Location) (time.Time, error) {
	if len(s) < dateTimeLen || (s[10] != 'T' && s[10] != ' ') {
		return time.Time{}, fmt.Errorf("%q is not a date and time of the form YYYY-MM-DD HH:MM:SS or RFC 3339", s)
	}
	end := dateTimeLen
	if end < len(s) && s[end] == '.' {
		for end++; end < len(s) && '0' <= s[end] && s[end] <= '9'; end++ {
		}
	}
	zone := s[end:]
	switch {
	case zone == "":
		layout := zonelessT
		if s[10] == ' ' {
			layout = zonelessSpace
		}
		wall, err := time.Parse(layout, s)
		if err != nil {
			return time.Time{}, err
		}
		return inZone(wall, loc)
	case zone[0] == ' ':
		return parseGoString(s, end)
	}
	if s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	if len(zone) == len("+07:00:00") {
		return time.Parse(offsetSeconds, s)
	}
	// RFC3339Nano itself, so that time.Parse takes its fast path.
	return time.Parse(time.RFC3339Nano, s)
}

// parseGoString reads time.Time.String's form, "2024-12-01 13:00:00 +0100
// CET" with an optional monotonic clock reading " m=+0.000000001" after it;
// the date and time with any fraction end at end. The offset decides the
// instant; the zone abbreviation is not checked, since it is only a name
// (Go prints "+03" for zones without one) and may name different offsets
// in different places.
func parseGoString(s string, end int) (time.Time, error) {
	offset, abbrev, ok := strings.Cut(s[end+1:], " ")
	abbrev, monotonic, hasMonotonic := strings.Cut(abbrev, " ")
	if !ok || len(offset) != len("-0700") || abbrev == "" ||
		hasMonotonic && !strings.HasPrefix(monotonic, "m=+") && !strings.HasPrefix(monotonic, "m=-") {
		return time.Time{}, fmt.Errorf("%q is not a time of the form 2006-01-02 15:04:05 -0700 MST", s)
	}
	return time.Parse(goString, s[:end+1+len(offset)])
}

// errNoSingleInstant marks a zone-less time that does not name exactly one
// instant in its zone: one that a clock change skips, or one it repeats.
var errNoSingleInstant = errors.New("zone-less time names no single instant")

// inZone returns the instant at which the clocks of loc read the wall clock
// of wall (a time whose fields are taken as they are, in UTC). It refuses,
// with errNoSingleInstant, a wall clock that loc skips (time.Date would
// move it by the size of the gap) or shows twice (time.Date would pick one
// of the two): either way a stored reading would be off by the size of
// the clock change, and could collide with another.
func inZone(wall time.Time, loc *time.Location) (time.Time, error) {
	if loc == time.UTC {
		return wall, nil
	}
	year, month, day := wall.Date()
	hour, minute, sec := wall.Clock()
	t := time.Date(year, month, day, hour, minute, sec, wall.Nanosecond(), loc)
	if !sameWallClock(t, wall) {
		return time.Time{}, fmt.Errorf("%w: %s does not exist in %s, a clock change skips it",
			errNoSingleInstant, wall.Format(time.DateTime), loc)
	}
	// A clock change is a bound of the zone period holding t: the same wall
	// clock is shown twice when it is also shown under the offset of the
	// period before or after.
	start, end := t.ZoneBounds()
	if !start.IsZero() {
		if err := shownOnce(t, wall, start.Add(-time.Nanosecond)); err != nil {
			return time.Time{}, err
		}
	}
	if !end.IsZero() {
		if err := shownOnce(t, wall, end); err != nil {
			return time.Time{}, err
		}
	}
	return t, nil
}

// shownOnce reports an error wrapping errNoSingleInstant when the wall
// clock that t shows is also shown under the offset in force at neighbour,
// at another instant.
func shownOnce(t, wall, neighbour time.Time) error {
	_, offset := neighbour.Zone()
	other := wall.Add(-time.Duration(offset) * time.Second).In(t.Location())
	if other.Equal(t) || !sameWallClock(other, wall) {
		return nil
	}
	first, second := t, other
	if other.Before(t) {
		first, second = other, t
	}
	return fmt.Errorf("%w: %s is ambiguous in %s, the clocks show it at %s and again at %s",
		errNoSingleInstant, wall.Format(time.DateTime), t.Location(),
		first.UTC().Format(time.RFC3339), second.UTC().Format(time.RFC3339))
}

// sameWallClock reports whether a and b show the same date and time of day,
// each in its own location.
func sameWallClock(a, b time.Time) bool {
	ay, amo, ad := a.Date()
	by, bmo, bd := b.Date()
	ah, ami, as := a.Clock()
	bh, bmi, bs := b.Clock()
	return ay == by && amo == bmo && ad == bd && ah == bh && ami == bmi && as == bs && a.Nanosecond() == b.Nanosecond()
}

// maxUnixSeconds bounds the Unix times read from numbers, some 285 million
// years either way: up to it a float64 holds whole seconds exactly. Beyond
// it the conversion to int64 is implementation-defined (1e300 became
// math.MinInt64 on amd64 and math.MaxInt64 on arm64, and time.Unix then
// wrapped around), so where such a time fell against the window was luck.
const maxUnixSeconds = 1 << 53

// unixTime reads n as Unix seconds, or milliseconds from unixMillisThreshold
// on, keeping sub-second precision down to the microsecond: that is what
// PostgreSQL stores, and a float64 of today's Unix seconds holds no more
// (1733054400123 ms would otherwise come out as .122999907 s). It reports
// false for a time beyond maxUnixSeconds.
func unixTime(n float64) (time.Time, bool) {
	if math.Abs(n) >= unixMillisThreshold {
		n /= 1000
	}
	if math.Abs(n) > maxUnixSeconds {
		return time.Time{}, false
	}
	sec, frac := math.Modf(n)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC(), true
}

// jsonError maps an error of encoding/json/v2 to an InputError.
func jsonError(payload []byte, err error, batch bool) *InputError {
	// Unmarshal into a Go value stops at the first type mismatch, so a
	// malformed batch such as `[[[` would pass for not_object; the syntax
	// of the whole payload decides first. Only failures pay for this.
	if synErr := json.Unmarshal(payload, new(jsontext.Value)); synErr != nil {
		err = synErr
	}
	in := &InputError{Reason: ReasonInvalidJSON, Index: -1, Err: err}
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn):
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			in.Reason = ReasonDuplicateKey
		}
		in.Index, in.Field = pointerParts(syn.JSONPointer, batch)
	case errors.As(err, &sem):
		in.Index, in.Field = pointerParts(sem.JSONPointer, batch)
		switch {
		case in.Field == "" && sem.JSONKind != '{':
			in.Reason = ReasonNotObject
		default:
			in.Reason = ReasonInvalidField
		}
	}
	return in
}

// pointerParts splits a JSON pointer such as /3/sensor into the batch index
// and the top-level field name of a reading.
func pointerParts(p jsontext.Pointer, batch bool) (index int, field string) {
	index = -1
	for tok := range p.Tokens() {
		if batch && index < 0 {
			if n, err := strconv.Atoi(tok); err == nil {
				index = n
				continue
			}
		}
		return index, tok
	}
	return index, ""
}

// validationError maps the first failed struct rule to an InputError.
func validationError(err error) *InputError {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) || len(verrs) == 0 {
		return &InputError{Reason: ReasonInvalidField, Index: -1, Err: err}
	}
	fe := verrs[0]
	in := &InputError{Index: -1, Field: fe.Field()}
	switch {
	case fe.Tag() == "required":
		in.Reason = ReasonMissingField
		in.Err = fmt.Errorf("%s is required", fe.Field())
	case fe.Field() == "sensor":
		in.Reason = ReasonInvalidSensor
		in.Err = fmt.Errorf("sensor %.80q does not match %s", fe.Value(), sensorName)
	case fe.Field() == "station":
		in.Reason = ReasonInvalidStation
		in.Err = fmt.Errorf("station %.80q does not match %s", fe.Value(), stationName)
	default:
		in.Reason = ReasonInvalidField
		in.Err = fmt.Errorf("%s fails rule %q", fe.Field(), fe.Tag())
	}
	return in
}
