// Package redis is sensorhub's Redis transport: it reads raw messages from a
// Redis stream through a consumer group, bridges the legacy Pub/Sub channel
// onto that stream, publishes poisoned messages and reads the poison stream
// back for inspection and replay.
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
