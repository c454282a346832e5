package redis

import (
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// slot returns the Redis Cluster hash slot of key, as the Redis Cluster
// specification defines it ("Key distribution model", "Hash tags"): CRC16
// (the XMODEM variant: polynomial 0x1021, initial value 0, no reflection)
// of the key modulo 16384, where a key holding "{…}" with at least one
// byte between the first "{" and the first "}" after it is hashed by that
// part alone. So "{sensor}stream" and "{sensor}stream.poison" share a
// slot, and "sensor_stream" and "sensor_stream.poison" most likely do not.
func slot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := range len(key) {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slotCount
}

// sameSlot returns an error, for a transport on a Redis Cluster, when the
// stream, its nack hash and its poison stream do not share a hash slot.
//
// The transport sends no command with two keys, so it would work with
// them on different nodes, but one guarantee would not hold: an entry is
// poisoned by an XADD to the poison stream and then an XACK on the stream,
// and Redis replicates asynchronously. On one node, a replica promoted
// after a crash has a prefix of its master's writes, so it holds the
// record whenever it holds the ack; on two nodes, one failover could keep
// the ack and lose the record, and the poisoned message would be gone.
// The lookup that keeps one record per entry (poisonStream.recordsOf) also
// relies on the two streams' ids coming from one clock.
func sameSlot(stream, poison string) error {
	nacks := nackKey(stream)
	s, n, p := slot(stream), slot(nacks), slot(poison)
	if s == n && s == p {
		return nil
	}
	return fmt.Errorf("on a Redis Cluster the stream %q (hash slot %d), its nack hash %q (slot %d) and its poison stream %q (slot %d) must share a hash slot, "+
		"or a failover could lose a poisoned message: give the stream a hash tag, e.g. %q, and the poison stream the same tag (the default, stream + %q, has it)",
		stream, s, nacks, n, poison, p, "{sensor}stream", ".poison")
}

// onCluster reports whether the transport's commands go to a Redis Cluster:
// through a cluster client passed in, or one New creates from
// ClusterOptions.
func (c Config) onCluster() bool {
	_, isCluster := c.Client.(*goredis.ClusterClient)
	return isCluster || c.ClusterOptions != nil
}
