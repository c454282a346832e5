package api

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// query reads a request's query parameters, collecting one error per bad
// parameter so that a 400 names every one of them.
type query struct {
	values url.Values
	errs   []paramError
}

// repeatable are the parameters that may be given more than once.
var repeatable = []string{"qc_flag"}

// newQuery reads r's query string, failing for a parameter not in allowed
// and for a single-valued one given twice.
func newQuery(r *http.Request, allowed ...string) *query {
	q := &query{}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		q.fail("query", "the query string is malformed: %v", err)
	}
	q.values = values
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names) // errors in a stable order
	for _, name := range names {
		switch {
		case !slices.Contains(allowed, name):
			q.fail(name, "unknown parameter %s; this endpoint takes %s", quote(name), strings.Join(allowed, ", "))
		case len(values[name]) > 1 && !slices.Contains(repeatable, name):
			q.fail(name, "%s is given %d times; give it once", name, len(values[name]))
		}
	}
	return q
}

func (q *query) fail(param, format string, args ...any) {
	q.errs = append(q.errs, paramError{Parameter: param, Detail: fmt.Sprintf(format, args...)})
}

// err returns the 400 problem of every bad parameter, or nil.
func (q *query) err() error { return badParams(q.errs) }

// has reports whether the request set name.
func (q *query) has(name string) bool { return q.values.Has(name) }

// station reads a station id (the message contract's pattern).
func (q *query) station(name string) string {
	v := q.values.Get(name)
	if !q.has(name) {
		q.fail(name, "%s is required", name)
		return ""
	}
	if err := sensorhub.CheckStation(v); err != nil {
		q.fail(name, "%v", err)
	}
	return v
}

// sensor reads a sensor type name (the message contract's pattern).
func (q *query) sensor(name string) string {
	v := q.values.Get(name)
	if !q.has(name) {
		q.fail(name, "%s is required", name)
		return ""
	}
	if err := sensorhub.CheckSensor(v); err != nil {
		q.fail(name, "%v", err)
	}
	return v
}

// timestamp reads an RFC 3339 time; ok is false when name is absent or bad.
func (q *query) timestamp(name string) (t time.Time, ok bool) {
	if !q.has(name) {
		return time.Time{}, false
	}
	v := q.values.Get(name)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || !rfc3339.MatchString(v) {
		q.fail(name, "%s is not an RFC 3339 time such as 2024-12-01T12:00:00Z", quote(v))
		return time.Time{}, false
	}
	return t.UTC(), true
}

// rfc3339 is the layout of RFC 3339's date-time, which time.Parse alone
// does not hold to: it also takes one-digit hours.
var rfc3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// timeRange is a request's [from, to). To is nil when the range is open
// at the end.
type timeRange struct {
	From time.Time
	To   *time.Time
}

// timeRange reads from and to. Without from, the range starts span before
// to (or now); it may be at most maxSpan long, measured up to to (or now).
func (q *query) timeRange(now time.Time, span, maxSpan time.Duration) timeRange {
	from, hasFrom := q.timestamp("from")
	to, hasTo := q.timestamp("to")
	end := now
	if hasTo {
		end = to
	}
	if !q.has("from") {
		from = end.Add(-span)
	}
	rng := timeRange{From: from}
	if hasTo {
		rng.To = &to
	}
	if (q.has("from") && !hasFrom) || (q.has("to") && !hasTo) {
		return rng // reported already
	}
	switch {
	case !from.Before(end) && hasTo:
		q.fail("from", "from (%s) must be before to (%s): the range is [from, to)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	case end.Sub(from) > maxSpan:
		q.fail("from", "the range from %s to %s is longer than this endpoint's maximum of %s; ask for a shorter range",
			from.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), days(maxSpan))
	}
	return rng
}

// limit reads the page size: DefaultLimit when absent, at most MaxLimit.
func (q *query) limit() int {
	if !q.has("limit") {
		return DefaultLimit
	}
	v := q.values.Get("limit")
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || strings.HasPrefix(v, "+"):
		q.fail("limit", "%s is not a whole number", quote(v))
	case n < 1 || n > MaxLimit:
		q.fail("limit", "%d is out of range: limit is 1 to %d", n, MaxLimit)
	default:
		return n
	}
	return DefaultLimit
}

// qcFlags reads the QC flags to keep (QARTOD codes 1 to 4, comma-separated
// or repeated); nil keeps all.
func (q *query) qcFlags() []int16 {
	var flags []int16
	for _, list := range q.values["qc_flag"] {
		for v := range strings.SplitSeq(list, ",") {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 4 || len(v) != 1 {
				q.fail("qc_flag", "%s is not a QC flag: 1 pass, 2 not evaluated, 3 suspect, 4 fail", quote(v))
				continue
			}
			if !slices.Contains(flags, int16(n)) {
				flags = append(flags, int16(n))
			}
		}
	}
	return flags
}

// derived reads the derived filter: nil keeps all readings.
func (q *query) derived() *bool {
	if !q.has("derived") {
		return nil
	}
	switch v := q.values.Get("derived"); v {
	case "true", "false":
		b := v == "true"
		return &b
	default:
		q.fail("derived", "%s is not true or false", quote(v))
		return nil
	}
}

// units reads the unit system of the answer: canonical (default) or us.
func (q *query) units() unitSystem {
	switch v := q.values.Get("units"); v {
	case "", "canonical":
		return canonical
	case "us":
		return usCustomary
	default:
		q.fail("units", "%s is not a unit system: canonical (default) or us", quote(v))
		return canonical
	}
}

// quote quotes a value from a request for an error message, cut to 80
// bytes so that a huge parameter does not make a huge answer.
func quote(v string) string { return fmt.Sprintf("%.80q", v) }

// days formats a range limit for people.
func days(d time.Duration) string {
	return strconv.FormatFloat(d.Hours()/24, 'f', -1, 64) + " days"
}
