package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// page is the JSON body of every list: its items and the cursor of the
// next page, null on the last one.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// table is a list as CSV: a header and one record per item.
type table struct {
	header  []string
	records [][]string
}

// wantsCSV reports whether the client asked for CSV (Accept: text/csv)
// rather than JSON, the default. A media range the API cannot serve is
// answered with JSON, as RFC 9110 allows.
func wantsCSV(r *http.Request) bool {
	best, bestQ := "", -1.0
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if (mt == "text/csv" || mt == "application/json") && q > 0 && q > bestQ {
			best, bestQ = mt, q
		}
	}
	return best == "text/csv"
}

// cachePolicy says whether an answer may be cached, and for how long.
type cachePolicy struct {
	maxAge time.Duration // zero: no-cache
	// private keeps shared caches from storing it: set when the API asks
	// for a token.
	private bool
}

// writeList writes a list as JSON, or as CSV when the client asked for
// it; the next page's address is also in a Link header (rel="next"). With
// a max-age in policy the answer carries an ETag and Cache-Control, and a
// request whose If-None-Match holds the ETag is answered 304.
func writeList[T any](w http.ResponseWriter, r *http.Request, p page[T], asTable func([]T) table, policy cachePolicy) error {
	var body bytes.Buffer
	contentType := "application/json"
	if wantsCSV(r) {
		contentType = "text/csv; charset=utf-8"
		t := asTable(p.Items)
		cw := csv.NewWriter(&body)
		_ = cw.Write(t.header)
		_ = cw.WriteAll(t.records) // flushes; a bytes.Buffer does not fail
	} else if err := json.NewEncoder(&body).Encode(p); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Vary", "Accept, Authorization")
	if p.NextCursor != nil {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", *p.NextCursor)
		next.RawQuery = q.Encode()
		h.Set("Link", "<"+next.RequestURI()+`>; rel="next"`)
	}
	if policy.maxAge <= 0 {
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Type", contentType)
		_, _ = w.Write(body.Bytes())
		return nil
	}
	sum := sha256.Sum256(body.Bytes())
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	scope := "public"
	if policy.private {
		scope = "private"
	}
	h.Set("ETag", etag)
	h.Set("Cache-Control", scope+", max-age="+strconv.Itoa(int(policy.maxAge.Seconds())))
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", contentType)
	_, _ = w.Write(body.Bytes())
	return nil
}

// writeJSON writes v as a JSON answer that is not cached.
func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Vary", "Authorization")
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// etagMatches reports whether an If-None-Match header holds etag (weak
// comparison, RFC 9110 §13.1.2).
func etagMatches(header, etag string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

// CSV cells.

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optFloat(v *float64) string {
	if v == nil {
		return ""
	}
	return formatFloat(*v)
}

func optTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return formatTime(*t)
}
