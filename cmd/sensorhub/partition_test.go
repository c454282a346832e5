package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"
)

func TestRawRetention(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]time.Duration{"": 0, "0": 0, "730d": 730 * 24 * time.Hour, "8760h": 8760 * time.Hour, "90m": 90 * time.Minute} {
		cfg, err := loadConfig(envOf(map[string]string{"SENSORHUB_RAW_RETENTION": v}))
		if err != nil || cfg.rawRetention != want {
			t.Errorf("SENSORHUB_RAW_RETENTION=%q: %v, %v; want %s", v, cfg.rawRetention, err, want)
		}
	}
	for _, v := range []string{"-1h", "0d", "1y", "d", "1.5d", "forever", "100000d"} {
		_, err := loadConfig(envOf(map[string]string{"SENSORHUB_RAW_RETENTION": v}))
		if err == nil || !strings.Contains(err.Error(), "SENSORHUB_RAW_RETENTION: \""+v+"\"") {
			t.Errorf("SENSORHUB_RAW_RETENTION=%q: %v, want an error naming the variable and the value", v, err)
		}
	}
}

// TestServiceStoresEachReadingInItsMonthsPartition runs the service and
// checks the partitioned table end to end: the current month and the next
// two get partitions at start-up, and a backfill from 1985 gets one as it
// arrives; nothing stays in the default partition.
func TestServiceStoresEachReadingInItsMonthsPartition(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.start(t, "run")
	e.waitHealthy(t)
	now := time.Now().UTC()
	e.xadd(t, `{"sensor":"temperature","value":14,"timestamp":"1985-06-01T12:00:00Z","station":"roof"}`)
	e.xadd(t, `{"sensor":"temperature","value":15,"timestamp":"`+now.Format(time.RFC3339)+`","station":"roof"}`)
	poll.Until(t, 10*time.Second, "both readings stored", func() bool { return e.rows(t, "") == 2 })

	partitionOf := func(ts time.Time) string {
		var p string
		if err := e.db.Pool.QueryRow(t.Context(), `SELECT tableoid::regclass::text FROM readings WHERE ts = $1`, ts.Truncate(time.Second)).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := partitionOf(time.Date(1985, 6, 1, 12, 0, 0, 0, time.UTC)); p != "readings_p1985_06" {
		t.Errorf("the 1985 reading is in %s, want readings_p1985_06", p)
	}
	if p, want := partitionOf(now), "readings_p"+now.Format("2006_01"); p != want {
		t.Errorf("the current reading is in %s, want %s", p, want)
	}
	ahead := "readings_p" + time.Date(now.Year(), now.Month()+2, 1, 0, 0, 0, 0, time.UTC).Format("2006_01")
	poll.Until(t, 10*time.Second, ahead+" created ahead", func() bool {
		var ok bool
		_ = e.db.Pool.QueryRow(t.Context(), `SELECT to_regclass($1) IS NOT NULL`, ahead).Scan(&ok)
		return ok
	})
}

func TestPartitionCommands(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	code, out := e.cli(t, "partition", "create", "1999-01", "1999-02-15T00:00:00Z")
	if code != exitOK || out != "created readings_p1999_01\ncreated readings_p1999_02\n" {
		t.Fatalf("partition create = %d %q", code, out)
	}
	e.vars["SENSORHUB_RAW_RETENTION"] = "3650d"
	code, out = e.cli(t, "partition", "maintain")
	now := time.Now().UTC()
	if code != exitOK || !strings.Contains(out, "created readings_p"+now.Format("2006_01")+"\n") ||
		!strings.Contains(out, "dropped readings_p1999_01\ndropped readings_p1999_02\n") {
		t.Fatalf("partition maintain = %d %q; want this month created and 1999 dropped", code, out)
	}
	code, out = e.cli(t, "partition", "list")
	if code != exitOK || !strings.Contains(out, "readings_p"+now.Format("2006_01")+"  "+now.Format("2006-01")+"-01T00:00:00Z") ||
		!strings.Contains(out, "readings_default") || strings.Contains(out, "1999") {
		t.Fatalf("partition list = %d %q", code, out)
	}
	for _, args := range [][]string{{"partition"}, {"partition", "drop"}, {"partition", "list", "x"}, {"partition", "create", "2024-13", "soon"}, {"partition", "create", "2025-01", "2024-01"}} {
		code, out := e.cli(t, args...)
		if code != exitUsage {
			t.Errorf("%v = %d %q, want exit %d", args, code, out, exitUsage)
		}
	}
	if _, out := e.cli(t, "partition", "create", "2024-13", "soon"); !strings.Contains(out, `FROM "2024-13"`) || !strings.Contains(out, `TO "soon"`) {
		t.Errorf("partition create with two bad times = %q, want both named", out)
	}
}
