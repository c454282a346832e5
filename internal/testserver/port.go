package testserver

import (
	"net"
	"testing"
)

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago, for
// a server the test starts next.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testserver: find a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
