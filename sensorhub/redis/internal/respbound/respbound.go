// Package respbound bounds the bulk strings a go-redis client reads: a
// string longer than a limit never reaches the client's memory, a short
// stand-in naming its length takes its place.
package respbound

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Bound is a go-redis hook that wraps each connection the client dials, so
// that every bulk string longer than Limit bytes is read as a stand-in: a
// marker of the Bound's own and the string's length. Size tells a stand-in
// from a value.
type Bound struct {
	limit  int64
	marker string
}

// New returns a Bound for strings over limit bytes, with a marker of its
// own: NUL and a random part, so that no producer's value is taken for a
// stand-in.
func New(limit int64) Bound {
	return Bound{limit: limit, marker: "\x00sensorhub:too_large:" + rand.Text() + ":"}
}

// Size returns the size of a string over the limit, read from the stand-in
// that replaced it, or measured when v was read whole (on a connection
// without the bound); ok is false for a string within the limit.
func (b Bound) Size(v string) (size int64, ok bool) {
	if rest, found := strings.CutPrefix(v, b.marker); found {
		if n, err := strconv.ParseInt(rest, 10, 64); err == nil {
			return n, true
		}
	}
	return int64(len(v)), int64(len(v)) > b.limit
}

// DialHook implements goredis.Hook: it wraps each new connection.
func (b Bound) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return b.wrap(conn), nil
	}
}

// ProcessHook implements goredis.Hook; commands pass untouched.
func (Bound) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

// ProcessPipelineHook implements goredis.Hook; pipelines pass untouched.
func (Bound) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (b Bound) wrap(conn net.Conn) *boundedConn {
	return &boundedConn{Conn: conn, limit: b.limit, marker: b.marker, buf: make([]byte, 8<<10)}
}

// boundedConn passes on what Redis sends, except that it replaces each bulk
// string longer than limit with one of marker and the string's length, and
// drops the string's bytes as they arrive: a reply holding an entry of
// 16 MiB costs the client its buffer, not 16 MiB. It follows RESP2 and
// RESP3 line by line; the length-prefixed types ($ ! = and the chunks ; of
// streamed strings) are the only ones whose bodies may hold line breaks.
// Writes pass untouched. Like any net.Conn it is read by one goroutine at
// a time.
type boundedConn struct {
	net.Conn
	limit  int64
	marker string
	buf    []byte // read from Conn
	obuf   []byte // backs out
	out    []byte // filtered, not yet returned by Read
	line   []byte // the type line being read
	pass   int64  // bytes of a body still to pass on, its CRLF included
	skip   int64  // bytes of an oversized body still to drop, its CRLF included
	err    error  // a read error of Conn's, returned once out is drained
}

func (c *boundedConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if err := c.err; err != nil {
			c.err = nil
			return 0, err
		}
		n, err := c.Conn.Read(c.buf)
		c.out = c.filter(c.obuf[:0], c.buf[:n])
		c.obuf, c.err = c.out[:0], err
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// filter appends to out what b becomes.
func (c *boundedConn) filter(out, b []byte) []byte {
	for len(b) > 0 {
		switch {
		case c.skip > 0:
			n := min(int64(len(b)), c.skip)
			b, c.skip = b[n:], c.skip-n
		case c.pass > 0:
			n := min(int64(len(b)), c.pass)
			out = append(out, b[:n]...)
			b, c.pass = b[n:], c.pass-n
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				return out
			}
			c.line = append(c.line, b[:i+1]...)
			b = b[i+1:]
			out = c.typeLine(out, c.line)
			c.line = c.line[:0]
		}
	}
	return out
}

// typeLine appends a complete type line, or its stand-in, and prepares for
// the body it announces.
func (c *boundedConn) typeLine(out, line []byte) []byte {
	if len(line) < 4 || line[len(line)-2] != '\r' || strings.IndexByte("$!=;", line[0]) < 0 {
		return append(out, line...)
	}
	n, ok := parseLength(line[1 : len(line)-2])
	switch {
	case !ok || (line[0] == ';' && n == 0):
		// Null, a streamed string's start or end: no body.
	case line[0] == '$' && n > c.limit:
		stand := c.marker + strconv.FormatInt(n, 10)
		c.skip = n + 2
		return fmt.Appendf(out, "$%d\r\n%s\r\n", len(stand), stand)
	default:
		c.pass = n + 2
	}
	return append(out, line...)
}

// parseLength parses the decimal length of a RESP type line without
// allocating; it reports false for anything else, such as -1 (null) or a
// streamed string's "?".
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Interface guards.
var (
	_ goredis.Hook = Bound{}
	_ net.Conn     = (*boundedConn)(nil)
)
