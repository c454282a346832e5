package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReorderWindowDefaultsTo10sAndMustBePositive(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(envOf(nil))
	if err != nil || cfg.processing.reorderWindow != 10*time.Second {
		t.Fatalf("default reorder window = %s, %v; want 10s", cfg.processing.reorderWindow, err)
	}
	if _, err := loadConfig(envOf(map[string]string{"SENSORHUB_REORDER_WINDOW": "soon"})); err == nil ||
		!strings.Contains(err.Error(), "SENSORHUB_REORDER_WINDOW:") {
		t.Errorf("SENSORHUB_REORDER_WINDOW=soon: %v, want an error naming it", err)
	}
}

// TestRuleCommandManagesTheRulesTheServiceSeeds seeds rules with a first
// run, then adds, lists and removes rules from the command line.
func TestRuleCommandManagesTheRulesTheServiceSeeds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_THRESHOLDS"] = "temperature>30/28"
	p := e.start(t, "run")
	e.waitHealthy(t)
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("run exited %d", code)
	}

	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rule", "add", "temperature@roof<0/1"}, exitOK, "added rule 2 temperature@roof<0/1"},
		{[]string{"rule", "add", "temperature@roof<-3"}, exitFailure, "exists: 2 temperature@roof<0/1 (remove it first)"},
		{[]string{"rule", "add", "temperature<"}, exitUsage, "threshold"},
		{[]string{"rule", "add", "radon>300"}, exitUsage, `sensor type "radon" is not registered`},
		{[]string{"rule", "list"}, exitOK, "2 rule(s)"},
		{[]string{"rule", "remove", "1"}, exitOK, "removed rule 1"},
		{[]string{"rule", "remove", "1"}, exitFailure, "no such rule"},
		{[]string{"rule", "remove", "x"}, exitUsage, "not a rule ID"},
		{[]string{"rule"}, exitUsage, "rule add SPEC"},
	}
	for _, s := range steps {
		code, out := e.cli(t, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("sensorhub %s = %d:\n%s\nwant exit %d and %q", strings.Join(s.args, " "), code, out, s.code, s.want)
		}
	}
	_, out := e.cli(t, "rule", "list")
	if !strings.Contains(out, "2   temperature@roof<0/1  roof") || strings.Contains(out, "temperature>30/28") {
		t.Errorf("rule list after removing rule 1:\n%s", out)
	}
}

func TestSeedRuleOfAnUnregisteredTypeStopsStartUp(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.vars["SENSORHUB_THRESHOLDS"] = "temperature>30,radon>300"
	p := e.start(t, "run")
	code := p.wait(t, 30*time.Second)
	if out := p.logs.String(); code == exitOK || !strings.Contains(out, `SENSORHUB_THRESHOLDS: rule radon>300: sensor type "radon" is not registered`) {
		t.Errorf("run = %d:\n%s\nwant a failure naming the rule", code, out)
	}
}
