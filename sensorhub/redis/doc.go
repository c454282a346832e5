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
// # Poisoning exactly once, with stream commands only
//
// Every Redis command of the transport touches one key and is in the ACL
// categories @stream, @pubsub and @connection: no MULTI, no Lua script.
// The least-privilege ACL user the docs give may run them all, and none
// can fail with CROSSSLOT on a Redis Cluster. Two consequences:
//
// Poisoning an entry is three steps: XPENDING (is the entry still pending
// in the group? if not, another consumer finished it, and nothing is
// written), XADD to the poison stream, XACK. A crash between the XADD and
// the XACK leaves the entry pending, and so poisoned again by whichever
// consumer next claims it; two replicas holding the same entry may both
// reach the XADD. So each XADD is followed by a look for records of the
// same source entry (field entry_id), read from the entry's own time on:
// the earliest record stays, later ones are deleted, and only the writer
// of the earliest counts and logs it. Whoever settles last sees every
// record added before its own, so one record remains. The look costs a
// read of the poison records written since the source entry was, usually
// a handful. Deriving the poison entry's id from the source entry's would
// make the XADD itself the check, but ids must grow in a stream and
// entries are poisoned out of order; a marker key (SET NX) would need
// another key pattern and command category in the ACL. The one case left
// is a crash of one replica right after its XADD while another replica
// settles and acks the same entry at the same moment: then a second
// record remains.
//
// An entry with a field over MaxFieldBytes is poisoned from what was read
// of it: with Options or ClusterOptions, the subscriber's connections drop such a field as
// it arrives, so the record holds the entry's payload only when the
// oversized field was another one, and otherwise an empty payload and an
// error naming the field and its size. The oversized field is not copied.
//
// A command Redis refuses for a reason retrying cannot fix (NOPERM,
// WRONGTYPE, CROSSSLOT, …) is logged once a minute per kind, counted in
// SubscriberStats.RefusedCommands, and fails Transport.Check for a minute.
// A poison step so refused is not retried in a loop: the entry stays
// pending until it is next delivered or claimed. Reads and acks are
// retried with backoff all the same.
//
// # Redis Cluster
//
// With ClusterOptions, or a *goredis.ClusterClient as Client, the
// transport runs on a Redis Cluster; the cluster client follows MOVED and
// ASK redirections. Although no command has two keys, Validate requires
// the stream, its nack hash and its poison stream to share a hash slot,
// which a hash tag in the stream's name gives them: "{sensor}stream",
// "{sensor}stream:nacks", "{sensor}stream.poison". Redis replicates
// asynchronously, and a replica promoted after its master died holds a
// prefix of that master's writes: with both streams on one master, it
// holds a poison record whenever it holds the XACK that followed it; on
// two masters, one failover could keep the ack and lose the record. The
// lookup of a source entry's records also compares the ids of both
// streams, which one clock keeps in step.
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
