// Package metrics exposes sensorhub's counters to Prometheus. It is the only
// package of the module that imports the Prometheus client: the library core
// (package sensorhub) keeps plain counters behind Stats methods, and the
// collectors here read them when Prometheus scrapes, so the message path
// pays nothing for metrics it already counts.
//
// The pieces, each usable on its own:
//
//   - HubCollector reads Hub.Stats: messages received, readings stored,
//     duplicates and conflicts, messages poisoned by reason, retries.
//   - BridgeCollector reads the Pub/Sub bridge's BridgeStats.
//   - SubscriberCollector reads the stream subscriber's SubscriberStats:
//     consumer groups recreated after Redis lost them.
//   - InstrumentSink wraps a sensorhub.Sink to observe commit sizes,
//     commit latency and errors: numbers no Stats snapshot holds.
//   - RedisCollector asks Redis on each scrape for the consumer group's lag
//     and pending entries and the poison queue's length.
//   - OutboxCollector reports the outbox forwarder: events forwarded, and
//     the events pending and their age (the outbox lag).
//   - StalenessCollector reports staleness: per (station, sensor) whether
//     it is stale, the sweeps, and the stale and recovered events written.
//   - NewRegistry and Handler serve it all, with Go runtime and process
//     metrics, on GET /metrics.
//
// Wiring a hub by hand (cmd/sensorhub does the same with fx):
//
//	reg := metrics.NewRegistry()
//	sink, err := metrics.InstrumentSink(postgresSink, reg)
//	// ... build the hub with sink ...
//	hubMetrics, err := metrics.NewHubCollector(hub)
//	redisMetrics, err := metrics.NewRedisCollector(metrics.RedisConfig{Client: client, Stream: stream, PoisonStream: transport.PoisonStream()})
//	reg.MustRegister(hubMetrics, redisMetrics)
//	mux.Handle("GET /metrics", metrics.Handler(reg, logger))
//
// Metric names are part of the contract with dashboards and alerts (see
// deploy/grafana): add metrics, never rename them.
package metrics
