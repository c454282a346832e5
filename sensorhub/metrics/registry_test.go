package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/sensorhub/metrics"
)

func TestHandlerServesRuntimeAndSensorhubMetrics(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	c, err := metrics.NewBridgeCollector(bridgeStats{Received: 2, Appended: 2})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(c)
	srv := httptest.NewServer(metrics.Handler(reg, discardLogger()))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"sensorhub_bridge_appended_total 2", "go_goroutines ", "process_resident_memory_bytes ", "go_info{"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q", want)
		}
	}
}
