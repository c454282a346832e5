// Package sensorhub is the core of an embeddable event-processing framework
// for (weather) sensor data: it decodes and validates raw messages, routes
// each reading to the handler of its sensor type and stores the result
// through a Sink, poisoning what can never be stored and retrying what may
// pass.
//
// The package knows neither Redis nor PostgreSQL: a Hub consumes any
// Watermill message.Subscriber, publishes poisoned messages to any
// message.Publisher and writes to any Sink. Package sensorhub/redis and
// package sinks/postgres provide the real ones; sensorhub/sensorhubtest an
// in-memory kit for tests.
//
// # Messages
//
// A message is one JSON object, or a JSON array of them stored all or
// nothing:
//
//	{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00", "station": "roof", "unit": "Cel"}
//
// The hub checks the raw bytes (size, UTF-8, NUL, duplicate keys), then
// the fields, and reports every problem as an *InputError with a reason code
// (the Reason* constants) that names what the poison queue records.
//
// # Sensor types
//
// A sensor type is a name, a canonical unit and a valid range; a reading in
// another accepted unit is converted before the range is checked. A hub is
// built with its sensor types, fixed for its life; adding one of your own
// takes a few lines:
//
//	soilPH := sensorhub.SensorType{
//		Name:  "soil_ph", // the "sensor" field producers send; stored, never rename it
//		Unit:  "pH",
//		Min:   0,
//		Max:   14,
//		Units: map[string]sensorhub.Conversion{"pOH": func(v float64) float64 { return 14 - v }},
//		// Handle is optional: it may derive or drop readings.
//		Handle: func(ctx context.Context, r sensorhub.Reading) (sensorhub.Batch, error) {
//			return sensorhub.Batch{Readings: []sensorhub.Reading{r}}, nil
//		},
//	}
//	hub, err := sensorhub.New(sensorhub.Config{Subscriber: sub, Publisher: pub, Sink: sink},
//		append(handlers.Builtin(), soilPH)...)
//	if err != nil {
//		return err
//	}
//	return hub.Run(ctx)
//
// The built-in weather types live in package handlers, one package each.
// Package pipeline wires a hub to Redis and PostgreSQL in one call.
//
// # Events
//
// A handler may return events next to its readings (Batch.Events): they
// commit or roll back together with the readings, in the sink's
// transaction, and are then forwarded to the events stream
// (DefaultEventsStream). A user-defined event is a type name and any
// JSON-encodable payload; NewReadingEvent derives its UUID from the reading,
// so that a redelivered or re-sent reading gives the same event, which
// consumers drop as a repeat:
//
//	e, err := sensorhub.NewReadingEvent(r, "frost.warning", 1, map[string]any{"station": r.Station})
//	return sensorhub.Batch{Readings: []sensorhub.Reading{r}, Events: []sensorhub.Event{e}}, err
//
// The Postgres sink adds one EventReadingsStored event per transaction that
// stored new readings. Delivery is at least once; consumers dedupe by
// Event.UUID (package events helps).
//
// # Errors
//
// A handler or sink error marked with Permanent, and every *InputError,
// sends the message to the poison queue with its reason and acks it. Every
// other error is transient: a handler's is retried with exponential backoff
// (Config.MaxRetries), then the message is nacked and redelivered; a sink's
// (the database is unreachable) is retried in process for as long as it
// lasts, so that an outage never spends a message's redelivery budget.
// Nothing is acked before the sink has committed it.
package sensorhub
