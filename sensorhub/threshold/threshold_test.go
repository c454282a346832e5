package threshold_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/threshold"
)

var t0 = time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, spec string) []threshold.Rule {
	t.Helper()
	rules, err := threshold.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// feed runs values one minute apart through the rules that Select picks
// for station, each with its own alarm state, and returns the crossings.
func feed(t *testing.T, rules []threshold.Rule, station string, values ...float64) []threshold.Crossed {
	t.Helper()
	active := map[string]bool{}
	var out []threshold.Crossed
	for i, v := range values {
		r := sensorhub.Reading{Station: station, Sensor: "temperature", Time: t0.Add(time.Duration(i) * time.Minute), Value: v, Unit: "Cel"}
		for _, rule := range threshold.Select(rules, station, r.Sensor) {
			next := rule.Next(active[rule.String()], v)
			if next != active[rule.String()] {
				out = append(out, rule.Crossing(r, next))
			}
			active[rule.String()] = next
		}
	}
	return out
}

func summary(cs []threshold.Crossed) string {
	var b strings.Builder
	for _, c := range cs {
		state := "cleared"
		if c.Active {
			state = "raised"
		}
		b.WriteString(c.Direction + "/" + state + "@" + c.Time.Format("04") + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestHysteresisKeepsANoisyValueFromFlapping(t *testing.T) {
	t.Parallel()
	e := mustParse(t, "temperature>30/28")
	// 31 raises; 29.5..30.5 hovers between clear and threshold: nothing;
	// 27 clears; 29 and 30 do not raise again; 30.1 does.
	got := summary(feed(t, e, "roof", 25, 31, 29.5, 30.5, 29, 30.2, 27, 29, 30, 30.1))
	if want := "rising/raised@01 falling/cleared@06 rising/raised@09"; got != want {
		t.Errorf("crossings %q, want %q", got, want)
	}
}

func TestFallingRuleAndStationOverride(t *testing.T) {
	t.Parallel()
	e := mustParse(t, "temperature<5/6, temperature@roof<0/1")
	if got, want := summary(feed(t, e, "roof", 3, -1, 0.5, 1.5)), "falling/raised@01 rising/cleared@03"; got != want {
		t.Errorf("roof (own rule <0/1): %q, want %q", got, want)
	}
	if got, want := summary(feed(t, e, "garden", 3, 5.5, 6.5)), "falling/raised@00 rising/cleared@02"; got != want {
		t.Errorf("garden (rule for any station <5/6): %q, want %q", got, want)
	}
}

func TestStationsAndRulesHaveSeparateState(t *testing.T) {
	t.Parallel()
	e := mustParse(t, "temperature>30/28,temperature<0")
	if got := summary(feed(t, e, "a", 31, -1)); got != "rising/raised@00 falling/cleared@01 falling/raised@01" {
		t.Errorf("station a: %q", got)
	}
	if got := summary(feed(t, e, "b", 31)); got != "rising/raised@00" {
		t.Errorf("station b: %q", got)
	}
}

func TestParseNamesEveryBadEntry(t *testing.T) {
	t.Parallel()
	_, err := threshold.Parse("temperature>30/28, Temp>1, humidity>x, rain<5/4, wind@>3, temperature>31, pressure")
	if err == nil {
		t.Fatal("bad rules accepted")
	}
	for _, want := range []string{`entry 2 "Temp>1"`, `entry 3 "humidity>x"`, `entry 4 "rain<5/4"`, `entry 5 "wind@>3"`, `entry 6 "temperature>31"`, `entry 7 "pressure"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `entry 1 "`) {
		t.Errorf("good entry 1 named:\n%v", err)
	}
	if rules, err := threshold.Parse("  "); err != nil || rules != nil {
		t.Errorf("blank = %v, %v; want no rules", rules, err)
	}
	rules, _ := threshold.Parse("temperature@roof<0/1,humidity>95")
	if rules[0].String() != "temperature@roof<0/1" || rules[1].String() != "humidity>95" {
		t.Errorf("String() = %s, %s", rules[0], rules[1])
	}
}

func TestSelectPicksOneRulePerDirection(t *testing.T) {
	t.Parallel()
	rules := mustParse(t, "temperature>30, temperature@roof>25, temperature<0, humidity>95")
	var got []string
	for _, r := range threshold.Select(rules, "roof", "temperature") {
		got = append(got, r.String())
	}
	if strings.Join(got, " ") != "temperature@roof>25 temperature<0" {
		t.Errorf("Select(roof, temperature) = %v", got)
	}
	if got := threshold.Select(rules, "garden", "rain"); len(got) != 0 {
		t.Errorf("Select(garden, rain) = %v, want none", got)
	}
}
