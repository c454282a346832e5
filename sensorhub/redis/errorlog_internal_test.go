package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
)

// TestPermanentKindOfRedisReplies classifies real replies of the test
// server: those retrying cannot fix are permanent, the rest are not.
func TestPermanentKindOfRedisReplies(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	ctx := t.Context()
	key := redistest.Name(t, "errkind")
	if err := client.Set(ctx, key, "a string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	reply := func(args ...any) error {
		t.Helper()
		err := client.Do(ctx, args...).Err()
		if err == nil {
			t.Fatalf("%v succeeded", args)
		}
		return err
	}
	tests := []struct {
		name string
		err  error
		kind string // "" for not permanent
	}{
		{"wrong type", reply("XLEN", key), "WRONGTYPE"},
		{"unknown command", reply("NOSUCHCOMMAND"), "ERR"},
		{"unknown script", reply("EVALSHA", strings.Repeat("0", 40), 0), "NOSCRIPT"},
		{"wrapped", fmt.Errorf("poison: %w", reply("XLEN", key)), "WRONGTYPE"},
		{"bad stream id", reply("XADD", key+"x", "0-0", "f", "v"), ""},
		{"not a reply", errors.New("NOPERM lookalike from elsewhere"), ""},
	}
	for _, tt := range tests {
		kind, ok := permanentKind(tt.err)
		if kind != tt.kind || ok != (tt.kind != "") {
			t.Errorf("%s: permanentKind(%v) = %q, %v; want %q", tt.name, tt.err, kind, ok, tt.kind)
		}
	}

	var logs strings.Builder
	l := newErrorLog(slog.New(slog.NewTextHandler(&logs, nil)))
	if err := l.Check(ctx); err != nil {
		t.Errorf("Check before any error = %v", err)
	}
	for range 3 {
		l.permanent("op", tests[0].err)
	}
	if l.permanent("op", tests[4].err) {
		t.Error("a transient error was taken for a permanent one")
	}
	if got := l.snapshot(); got["WRONGTYPE"] != 3 || len(got) != 1 {
		t.Errorf("counts = %v, want 3 WRONGTYPE", got)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	if err := l.Check(ctx); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("Check = %v, want the WRONGTYPE error", err)
	}
}
