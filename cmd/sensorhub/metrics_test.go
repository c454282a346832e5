package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"
)

// metricsPassword is put into DATABASE_URL when the test server's URL has no
// password (a server that trusts local connections never asks for it), so
// that the test can look for a password known to the service.
const metricsPassword = "metrics-test-Secr3t"

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	password := metricsPassword
	if u, err := url.Parse(e.db.URL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			password = pw
		} else {
			u.User = url.UserPassword(u.User.Username(), metricsPassword)
			e.vars["DATABASE_URL"] = u.String()
		}
	}
	e.start(t, "run")
	e.waitHealthy(t)

	for _, payload := range []string{
		`{"sensor":"temperature","value":14,"timestamp":"2024-12-01T12:00:00Z","station":"roof"}`,
		`{"sensor":"humidity","value":55,"timestamp":"2024-12-01T12:00:00Z","station":"roof"}`,
		`{"sensor":"pressure","value":1013,"timestamp":"2024-12-01T12:00:00Z","station":"roof"}`,
		`not json`,
	} {
		e.xadd(t, payload)
	}
	poll.Until(t, 5*time.Second, "three readings stored", func() bool { return e.rows(t, "") == 3 })
	poll.Until(t, 5*time.Second, "one message poisoned", func() bool { return len(e.poisoned(t)) == 1 })

	var body string
	var samples map[string]float64
	scrape := func() {
		t.Helper()
		body, samples = e.scrapeMetrics(t)
	}
	// Stored and poisoned are counted once the message is acked, a moment
	// after the row and the poison entry appear.
	poll.Until(t, 5*time.Second, "the counters and the consumer group caught up", func() bool {
		scrape()
		return samples["sensorhub_readings_stored_total"] == 3 &&
			samples[`sensorhub_messages_poisoned_total{reason="invalid_json"}`] == 1 &&
			samples["sensorhub_pending_entries"] == 0
	})

	for series, want := range map[string]float64{
		`sensorhub_messages_received_total{source="stream"}`:         4,
		"sensorhub_readings_stored_total":                            3,
		"sensorhub_readings_duplicates_total":                        0,
		"sensorhub_readings_conflicts_total":                         0,
		`sensorhub_messages_poisoned_total{reason="invalid_json"}`:   1,
		`sensorhub_messages_poisoned_total{reason="unknown_sensor"}`: 0,
		`sensorhub_sink_errors_total{kind="permanent"}`:              0,
		"sensorhub_batch_size_sum":                                   3,
		"sensorhub_redis_up":                                         1,
		"sensorhub_consumer_lag":                                     0,
		"sensorhub_pending_entries":                                  0,
		"sensorhub_poison_queue_length":                              1,
		"sensorhub_bridge_received_total":                            0,
	} {
		if got, ok := samples[series]; !ok || got != want {
			t.Errorf("%s = %v (present %t), want %v", series, got, ok, want)
		}
	}
	// The forwarder sends the readings.stored events on its own schedule:
	// counted once it has (it used to be asserted 0, which held only while
	// the forwarder was slower to start than the scrape).
	poll.Until(t, 10*time.Second, "the readings.stored events forwarded and counted", func() bool {
		scrape()
		return samples["sensorhub_outbox_forwarded_total"] >= 1
	})
	// Group commit may have written the three messages in one to three
	// transactions.
	if n := samples["sensorhub_batch_size_count"]; n < 1 || n > 3 {
		t.Errorf("sensorhub_batch_size_count = %v, want 1 to 3 commits", n)
	}
	if n := samples["sensorhub_commit_duration_seconds_count"]; n != samples["sensorhub_batch_size_count"] {
		t.Errorf("sensorhub_commit_duration_seconds_count = %v, want one per commit (%v)", n, samples["sensorhub_batch_size_count"])
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "promhttp_metric_handler_requests_total{code=\"200\"}"} {
		if _, ok := samples[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}

	for _, secret := range []string{password, e.db.URL, e.vars["DATABASE_URL"], e.vars["REDIS_URL"], "postgres://", "redis://"} {
		if strings.Contains(body, secret) {
			t.Errorf("GET /metrics exposes %q", secret)
		}
	}

	// The health endpoints are still served next to /metrics.
	if code, _ := e.health("/livez"); code != http.StatusOK {
		t.Errorf("GET /livez = %d", code)
	}
}
