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
//
// # Redelivery budget
//
// An entry whose handler keeps failing is poisoned with reason
// redelivery_limit after Config.MaxDeliveries nacks. Redis's own delivery
// counter cannot be that budget: every re-read of a consumer's pending list
// after a restart and every XCLAIM raises it, so deploys during a long
// database outage would poison valid readings that no handler ever failed.
// The subscriber counts nacks itself instead, in a hash next to the stream,
// <stream>:nacks (field: entry id), with HINCRBY when a nack is counted and
// HDEL when the entry is acked or poisoned. A hash of the stream's name,
// rather than a key per entry, keeps the count durable across restarts and
// replicas at the cost of one key, shares the stream's hash tag when its
// name has one, and needs only single-key commands, so it works on Redis
// Cluster. A nack is counted once its NackDelay has passed, just before the
// entry is delivered again; a subscription that stops meanwhile leaves the
// entry pending with its budget unspent. That is how the hub's stop during
// a database outage, which ends the in-process retries of the messages
// waiting for the database and so nacks them, costs them nothing: each is
// neither acked nor counted, and is delivered again after the restart.
package redis
