// Package redis is sensorhub's Redis transport. A Transport owns one stream,
// its consumer group and consumer, and its one poison stream: it hands out
// the Subscriber that reads the stream, the publisher of poisoned messages
// and the PoisonQueue that lists and replays them, all naming the same
// poison stream (Transport.PoisonStream, which the hub and the metrics are
// given too). Every poison entry has the layout of a PoisonRecord. The
// package also bridges the legacy Pub/Sub channel onto the stream (Bridge)
// and publishes to streams in the layout the Subscriber reads
// (NewPublisher).
//
// Entries are read in Watermill's redisstream layout, so that
// watermill-redisstream publishers work unchanged, and also in the layouts of
// hand-written producers: a plain
//
//	XADD sensor_stream * payload '{"sensor":"humidity","value":55,"timestamp":"2024-12-01T12:00:00Z"}'
//
// works, as do the fields data, body and message in place of payload. An
// entry with none of these is not dropped: it becomes a message the hub
// poisons with reason unsupported_entry.
package redis
