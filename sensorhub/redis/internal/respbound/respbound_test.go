package respbound

import (
	"io"
	"net"
	"strconv"
	"testing"
)

// chunkConn serves data in reads of at most size bytes, so that a reply is
// split at every possible place.
type chunkConn struct {
	net.Conn
	data string
	size int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if c.data == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func TestBoundedConnReplacesOnlyLongBulkStrings(t *testing.T) {
	t.Parallel()
	b := New(5)
	stand := func(n string) string { s := b.marker + n; return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }
	for _, tc := range []struct {
		name, in, want string
	}{
		{"short bulk string passes", "$5\r\nhello\r\n", "$5\r\nhello\r\n"},
		{"long bulk string replaced", "$6\r\nhello!\r\n", stand("6")},
		{"body with CRLF inside passes", "$5\r\na\r\nbc\r\n", "$5\r\na\r\nbc\r\n"},
		{"long body with CRLF inside dropped whole", "$8\r\na\r\n$9\r\nb\r\n:1\r\n", stand("8") + ":1\r\n"},
		{"null bulk string", "$-1\r\n", "$-1\r\n"},
		{"simple and integer replies", "+OK\r\n:123456789\r\n-ERR x\r\n", "+OK\r\n:123456789\r\n-ERR x\r\n"},
		{"array of an entry", "*2\r\n$3\r\nabc\r\n$7\r\n1234567\r\n", "*2\r\n$3\r\nabc\r\n" + stand("7")},
		{"RESP3 verbatim string over the limit passes", "=9\r\ntxt:hello\r\n", "=9\r\ntxt:hello\r\n"},
		{"RESP3 blob error passes", "!7\r\nERR bad\r\n", "!7\r\nERR bad\r\n"},
		{"streamed string chunks pass", "$?\r\n;3\r\nabc\r\n;0\r\n", "$?\r\n;3\r\nabc\r\n;0\r\n"},
		{"length too long to parse passes", "$1234567890123456789\r\n", "$1234567890123456789\r\n"},
	} {
		for _, size := range []int{1, 3, 1 << 10} {
			conn := b.wrap(&chunkConn{data: tc.in, size: size})
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("%s, reads of %d: %v", tc.name, size, err)
			}
			if string(got) != tc.want {
				t.Errorf("%s, reads of %d: got %q, want %q", tc.name, size, got, tc.want)
			}
		}
	}
}

func TestBoundSizeTellsStandInsFromValues(t *testing.T) {
	t.Parallel()
	b := New(5)
	for _, tc := range []struct {
		name string
		in   string
		size int64
		ok   bool
	}{
		{"stand-in", b.marker + "1048576", 1 << 20, true},
		{"value within the limit", "short", 5, false},
		{"value over the limit read whole", "longer", 6, true},
		{"another bound's stand-in is measured", New(5).marker + "9", int64(len(New(5).marker) + 1), true},
	} {
		size, ok := b.Size(tc.in)
		if size != tc.size || ok != tc.ok {
			t.Errorf("%s: Size = %d, %v; want %d, %v", tc.name, size, ok, tc.size, tc.ok)
		}
	}
}
