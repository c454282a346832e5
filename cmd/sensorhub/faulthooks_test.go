package main

import (
	"bytes"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"testing"
)

// TestDefaultBuildHasNoFaultHooks builds the binary as make build and the
// Dockerfile do, without -tags faulthooks, and checks that it holds none of
// the hooks' variables, which the binary the other tests run does hold.
func TestDefaultBuildHasNoFaultHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped under -short")
	}
	t.Parallel()
	defaultBinary := filepath.Join(t.TempDir(), "sensorhub")
	if err := buildBinary(defaultBinary); err != nil {
		t.Fatal(err)
	}
	hooks := []string{"SENSORHUB_TEST_CRASH_BEFORE_COMMIT", "SENSORHUB_TEST_CRASH_AFTER_COMMITS"}
	for _, c := range []struct {
		path      string
		wantHooks bool
	}{{binary, true}, {defaultBinary, false}} {
		raw, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range hooks {
			if got := bytes.Contains(raw, []byte(name)); got != c.wantHooks {
				t.Errorf("%s holds %s: %v, want %v", c.path, name, got, c.wantHooks)
			}
		}
		info, err := buildinfo.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		tags := ""
		for _, s := range info.Settings {
			if s.Key == "-tags" {
				tags = s.Value
			}
		}
		if got := tags == faultHooksTag; got != c.wantHooks {
			t.Errorf("%s was built with -tags %q", c.path, tags)
		}
	}
}
