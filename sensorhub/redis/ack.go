package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// ack sends the ids of acked messages to Redis, as many per XACK as have
// gathered while the previous XACK was on its way. It returns once acks is
// closed and drained.
func (s *subscription) ack() {
	batch := make([]string, 0, s.cfg.BatchSize)
	for id := range s.acks {
		batch = append(batch[:0], id)
	gather:
		for len(batch) < cap(batch) {
			select {
			case id, ok := <-s.acks:
				if !ok {
					break gather
				}
				batch = append(batch, id)
			default:
				break gather
			}
		}
		s.xack(batch)
	}
}

// xack acks ids, retrying while Redis is unreachable; once the subscription
// stops, it tries three times at most, and no longer than the flush
// context lasts. Unacked ids stay pending and are delivered again, so
// giving up at Close loses nothing.
func (s *subscription) xack(ids []string) {
	retry := newBackoff(minRetryBackoff, maxRetryBackoff)
	// The subscription's context may already be cancelled at shutdown;
	// acks of finished work still go out then.
	ctx := context.WithoutCancel(s.ctx)
	for attempt := 1; ; attempt++ {
		// The nack counts of acked entries are of no further use. Both
		// commands are of one key each, for Redis Cluster; a count left
		// behind by a failed HDEL only takes memory, so the ack stands on
		// the XACK alone (a user without rights on the hash still acks).
		var ack, del *goredis.IntCmd
		_, _ = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			ack = p.XAck(ctx, s.stream, s.cfg.Group, ids...)
			del = p.HDel(ctx, nackKey(s.stream), ids...)
			return nil
		})
		err := ack.Err()
		if err == nil {
			if delErr := del.Err(); delErr != nil {
				s.errs.permanent("ack", delErr)
			}
			s.acked.Add(uint64(len(ids)))
			for _, id := range ids {
				s.done(id)
			}
			return
		}
		// Retried all the same: until it is sent, the entries stay in hand.
		s.errs.permanent("ack", err)
		if s.ctx.Err() != nil && attempt >= 3 {
			s.log.Warn("redis: acks not sent at close; the entries will be delivered again", "count", len(ids), "error", err)
			return
		}
		wait := retry.NextBackOff()
		s.log.Warn("redis: ack failed, retrying", "count", len(ids), "error", err, "backoff", wait)
		sleep(s.flush.Done(), wait)
	}
}
