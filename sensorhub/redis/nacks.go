package redis

import (
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

// nackSuffix names the hash that counts the handler failures of a stream's
// entries: field entry id, value the nacks counted. It is a suffix of the
// stream's name so that the hash shares the stream's hash tag, and so its
// cluster slot, when the name has one. Part of the wire contract.
const nackSuffix = ":nacks"

// nackKey returns the key of the hash counting the nacks of stream's entries.
func nackKey(stream string) string { return stream + nackSuffix }

// nackCounts returns, in one HMGET, how often the consumer failed each of
// entries so far; 0 for any Redis cannot tell, so that a failed lookup never
// poisons.
func (s *subscription) nackCounts(entries []goredis.XMessage) []int {
	counts := make([]int, len(entries))
	if len(entries) == 0 {
		return counts
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	values, err := s.client.HMGet(s.ctx, nackKey(s.stream), ids...).Result()
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("redis: reading nack counts failed; counting from 0", "count", len(ids), "error", err)
		}
		return counts
	}
	for i, v := range values {
		if str, ok := v.(string); ok {
			counts[i], _ = strconv.Atoi(str)
		}
	}
	return counts
}

// countNack adds one nack of the entry id to its count in Redis and returns
// the new count. While Redis fails it returns known+1, the count this
// process knows of, so that a failing message still meets its limit.
func (s *subscription) countNack(id string, known int) int {
	n, err := s.client.HIncrBy(s.ctx, nackKey(s.stream), id, 1).Result()
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("redis: counting a nack failed; counting in process", "entry_id", id, "error", err)
		}
		return known + 1
	}
	return max(int(n), known+1)
}
