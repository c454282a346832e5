package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// permanentErrorWindow is how long a permanent error keeps Transport.Check
// failing, and how often, at most, one kind of it is logged: a command
// refused each time it is tried shows for as long as it is tried.
const permanentErrorWindow = time.Minute

// permanentKind returns the kind of a Redis error that retrying the same
// command cannot fix, the first word of Redis's reply (NOPERM for a
// command or key the ACL user may not use, WRONGTYPE, CROSSSLOT, NOSCRIPT,
// EXECABORT, or ERR for an unknown command), and false for any other
// error: network errors, and replies such as LOADING, BUSY, TRYAGAIN,
// CLUSTERDOWN, READONLY or OOM that pass once Redis recovers.
func permanentKind(err error) (string, bool) {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return "", false
	}
	msg := reply.Error()
	kind, _, _ := strings.Cut(msg, " ")
	switch kind {
	case "NOPERM", "WRONGTYPE", "CROSSSLOT", "NOSCRIPT", "EXECABORT":
		return kind, true
	case "ERR":
		if strings.Contains(msg, "unknown command") || strings.Contains(msg, "unknown subcommand") {
			return kind, true
		}
	}
	return "", false
}

// errorLog records the permanent errors of a transport's Redis commands:
// it counts them by kind, logs each kind at most once per
// permanentErrorWindow, and makes Check fail for permanentErrorWindow after
// the last one. Safe for concurrent use.
type errorLog struct {
	log *slog.Logger

	mu       sync.Mutex
	counts   map[string]uint64
	logged   map[string]time.Time
	last     time.Time
	lastText string
}

func newErrorLog(log *slog.Logger) *errorLog {
	return &errorLog{log: log, counts: make(map[string]uint64), logged: make(map[string]time.Time)}
}

// permanent reports whether err is permanent, and records it if so; op
// names what failed, for the log and Check.
func (l *errorLog) permanent(op string, err error) bool {
	kind, ok := permanentKind(err)
	if !ok {
		return false
	}
	now := time.Now()
	l.mu.Lock()
	l.counts[kind]++
	l.last, l.lastText = now, fmt.Sprintf("%s: %v", op, err)
	logNow := now.Sub(l.logged[kind]) >= permanentErrorWindow
	if logNow {
		l.logged[kind] = now
	}
	l.mu.Unlock()
	if logNow {
		l.log.Error("redis: command refused for a reason retrying cannot fix (check the ACL user's rights, or the keys' types and slots)",
			"op", op, "kind", kind, "error", err)
	}
	return true
}

// snapshot returns the permanent errors seen so far, by kind.
func (l *errorLog) snapshot() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.counts)
}

// Check fails while a permanent error is less than permanentErrorWindow
// old, naming the last one.
func (l *errorLog) Check(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() || time.Since(l.last) >= permanentErrorWindow {
		return nil
	}
	return fmt.Errorf("redis refused a command for good %s ago: %s", time.Since(l.last).Round(time.Second), l.lastText)
}
