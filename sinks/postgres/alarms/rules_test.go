package alarms_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/sensorhub/threshold"
	"github.com/sensorhub/sensorhub/sinks/postgres/alarms"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

func parse(t *testing.T, spec string) []threshold.Rule {
	t.Helper()
	rules, err := threshold.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestRulesAddListRemoveAndSeed(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	ctx := t.Context()

	added, err := alarms.SeedRules(ctx, db.Pool, parse(t, "temperature>30/28, temperature@roof<0/1"))
	if err != nil || len(added) != 2 {
		t.Fatalf("SeedRules = %v, %v; want both added", added, err)
	}
	// Seeding again, with a changed threshold for the same target, keeps
	// what the database holds.
	if again, err := alarms.SeedRules(ctx, db.Pool, parse(t, "temperature>35, humidity>95")); err != nil || len(again) != 1 || again[0].Sensor != "humidity" {
		t.Fatalf("second SeedRules = %v, %v; want only humidity>95 added", again, err)
	}
	_, err = alarms.AddRule(ctx, db.Pool, parse(t, "temperature@roof<-5")[0])
	if !errors.Is(err, alarms.ErrRuleExists) || !strings.Contains(err.Error(), "temperature@roof<0/1") {
		t.Errorf("AddRule of a taken target = %v, want ErrRuleExists naming the rule in place", err)
	}
	if err := alarms.RemoveRule(ctx, db.Pool, added[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := alarms.RemoveRule(ctx, db.Pool, added[1].ID); !errors.Is(err, alarms.ErrNoRule) {
		t.Errorf("second RemoveRule = %v, want ErrNoRule", err)
	}
	rules, err := alarms.ListRules(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.Rule.String())
	}
	if strings.Join(got, " ") != "temperature>30/28 humidity>95" {
		t.Errorf("ListRules = %v", got)
	}
}
