package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding the Go runtime (go_*) and process
// (process_*) collectors, to which the caller adds sensorhub's. A registry
// of its own, not prometheus.DefaultRegisterer, so that two hubs in one
// process or one test do not clash.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg's metrics for GET /metrics in the format the scraper
// asks for (Prometheus text by default), and counts its own requests and
// errors in reg (promhttp_metric_handler_*). A collector that fails is left
// out of the response and logged at Warn; the rest is still served. logger
// nil means slog.Default().
func Handler(reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	}))
}
