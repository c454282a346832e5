// Package procfs reads what Linux's /proc tells about a running process's
// memory and CPU use (proc(5)), for the fault suite's bounds and the
// benchmark's report. It works on Linux only; elsewhere every read fails.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on
// every Linux, which procfs itself assumes too.
const userHZ = 100

// StatusBytes returns a size field of /proc/<pid>/status, such as VmRSS
// (resident set size), VmHWM (its peak) or RssFile, in bytes.
func StatusBytes(pid int, field string) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, strings.TrimSpace(line), err)
		}
		return kib << 10, nil
	}
	return 0, fmt.Errorf("%s has no %s", path, field)
}

// RSS returns the process's resident set size and its peak since start or
// since the last ResetPeakRSS (VmRSS and VmHWM), in bytes.
func RSS(pid int) (rss, peak int64, err error) {
	if rss, err = StatusBytes(pid, "VmRSS"); err != nil {
		return 0, 0, err
	}
	if peak, err = StatusBytes(pid, "VmHWM"); err != nil {
		return 0, 0, err
	}
	return rss, peak, nil
}

// ResetPeakRSS sets the process's peak resident set size (VmHWM) to its
// current one, by writing 5 to /proc/<pid>/clear_refs. It needs the right
// to write there: the process's own user, or root.
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// CPUTime returns the CPU time the process has used so far, user and
// system, from /proc/<pid>/stat.
func CPUTime(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces and parentheses;
	// the fields after its last ')' start with the state (field 3), so
	// utime (14) and stime (15) are the 12th and 13th.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: too few fields: %q", path, s)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", path, s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
