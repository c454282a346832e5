package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// A cursor is the position after the last item of a page: the item's key
// (a time for readings and aggregates, a station id for stations). Pages
// are keyset pages on that key, so a page is the same whatever rows are
// inserted meanwhile before the position, and no row is skipped or seen
// twice. The cursor is opaque to clients: base64url of a small JSON
// object that also holds a fingerprint of the query it belongs to, so that
// it cannot be used with another one.
type cursor struct {
	Version int    `json:"v"`
	Key     string `json:"k"`
	Query   string `json:"q"`
}

const cursorVersion = 1

// fingerprint identifies a query by its path and parameters, less cursor
// and limit, which may change from page to page.
func fingerprint(path string, values url.Values) string {
	names := make([]string, 0, len(values))
	for name := range values {
		if name != "cursor" && name != "limit" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	h := sha256.New()
	h.Write([]byte(path))
	for _, name := range names {
		h.Write([]byte("\x00" + name + "=" + strings.Join(values[name], "\x01")))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// encodeCursor returns the cursor after key for the query fp.
func encodeCursor(key, fp string) string {
	b, _ := json.Marshal(cursor{Version: cursorVersion, Key: key, Query: fp})
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursorKey returns the key of the request's cursor, or "" without one.
// A cursor that is malformed or from another query is a 400.
func (q *query) cursorKey(fp string) string {
	if !q.has("cursor") {
		return ""
	}
	v := q.values.Get("cursor")
	b, err := base64.RawURLEncoding.DecodeString(v)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	switch {
	case err != nil || c.Version != cursorVersion || c.Key == "":
		q.fail("cursor", "%s is not a cursor of this API: pass next_cursor of the previous page unchanged", quote(v))
	case c.Query != fp:
		q.fail("cursor", "the cursor belongs to another query: keep every parameter but limit and cursor as on the first page")
	default:
		return c.Key
	}
	return ""
}

// cursorTime returns the time key of the request's cursor, nil without one.
func (q *query) cursorTime(fp string) *time.Time {
	key := q.cursorKey(fp)
	if key == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, key)
	if err != nil {
		q.fail("cursor", "the cursor's position is not a time: pass next_cursor of the previous page unchanged")
		return nil
	}
	return &t
}

// timeKey is the cursor key of a time.
func timeKey(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
