package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
)

const dashboardFile = "../../deploy/grafana/sensorhub.json"

// exportedNames returns the name of every metric the service can export:
// sensorhub's collectors and the Go runtime and process collectors.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	hub, err := metrics.NewHubCollector(stats{})
	if err != nil {
		t.Fatal(err)
	}
	bridge, err := metrics.NewBridgeCollector(bridgeStats{})
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClient(&goredis.Options{})
	t.Cleanup(func() { _ = client.Close() })
	subscriber, err := metrics.NewSubscriberCollector(subscriberStats{})
	if err != nil {
		t.Fatal(err)
	}
	redis, err := metrics.NewRedisCollector(metrics.RedisConfig{Client: client, PoisonStream: "sensor_stream.poison"})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := metrics.NewOutboxCollector(func() metrics.OutboxStats { return metrics.OutboxStats{} })
	if err != nil {
		t.Fatal(err)
	}
	staleness, err := metrics.NewStalenessCollector(func() metrics.StalenessStats { return metrics.StalenessStats{} })
	if err != nil {
		t.Fatal(err)
	}
	rollup, err := metrics.NewRollupCollector(func() metrics.RollupStats { return metrics.RollupStats{} })
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.InstrumentSink(&fakeWriter{}, reg); err != nil {
		t.Fatal(err)
	}
	descs := make(chan *prometheus.Desc, 1024)
	for _, c := range []prometheus.Collector{hub, bridge, subscriber, redis, outbox, staleness, rollup, reg,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		c.Describe(descs)
	}
	close(descs)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
		RawSQL     string      `json:"rawSql"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want 36 or later (datasource references by uid)", d.SchemaVersion)
	}

	// Data sources are chosen by template variables, never by a UID of
	// someone's Grafana.
	dsVars := map[string]string{} // variable name -> plugin type
	var exprs []string
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			var plugin string
			if err := json.Unmarshal(v.Query, &plugin); err != nil {
				t.Errorf("datasource variable %s: query %s is not a plugin id", v.Name, v.Query)
			}
			dsVars[v.Name] = plugin
		case "query":
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				_ = json.Unmarshal(v.Query, &q.Query)
			}
			exprs = append(exprs, q.Query)
		}
	}
	checkDatasource := func(where string, ds *datasource) {
		if ds == nil {
			return
		}
		name, ok := strings.CutPrefix(ds.UID, "${")
		name, ok2 := strings.CutSuffix(name, "}")
		if !ok || !ok2 || dsVars[name] == "" {
			t.Errorf("%s: data source uid %q is not a datasource template variable (${name})", where, ds.UID)
			return
		}
		if dsVars[name] != ds.Type {
			t.Errorf("%s: data source type %q, but variable %s selects %q", where, ds.Type, name, dsVars[name])
		}
	}

	var sql []string
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			checkDatasource("panel "+p.Title, p.Datasource)
			for _, tg := range p.Targets {
				checkDatasource("panel "+p.Title, tg.Datasource)
				if tg.Expr != "" {
					exprs = append(exprs, tg.Expr)
				}
				if tg.RawSQL != "" {
					sql = append(sql, tg.RawSQL)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	exported := exportedNames(t)
	used := map[string]bool{}
	metricName := regexp.MustCompile(`\b(?:sensorhub|go|process)_[a-zA-Z0-9_]+`)
	for _, expr := range exprs {
		for _, name := range metricName.FindAllString(expr, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
					base = b
				}
			}
			if !exported[base] {
				t.Errorf("the dashboard uses %s, which sensorhub does not export: %s", name, expr)
			}
			used[base] = true
		}
	}
	// Every sensorhub metric has a panel.
	for name := range exported {
		if strings.HasPrefix(name, "sensorhub_") && !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}

	if !slices.ContainsFunc(sql, func(q string) bool {
		return strings.Contains(q, "FROM readings") && strings.Contains(q, "$__timeFilter(ts)")
	}) {
		t.Errorf("no panel queries the readings table over the time range; SQL: %q", sql)
	}
}
