package redis

import (
	"errors"
	"slices"
	"strings"

	"github.com/cenkalti/backoff/v5"
	goredis "github.com/redis/go-redis/v9"
)

// read delivers this consumer's pending entries, then new ones.
func (s *subscription) read() {
	pendingFrom := "0"
	retry := newBackoff(minRetryBackoff, maxRetryBackoff)
	for s.ctx.Err() == nil {
		n := s.acquire(s.cfg.BatchSize)
		if n == 0 {
			return
		}
		id := ">"
		if pendingFrom != "" {
			id = pendingFrom
		}
		streams, err := s.client.XReadGroup(s.ctx, &goredis.XReadGroupArgs{
			Group:    s.cfg.Group,
			Consumer: s.cfg.Consumer,
			Streams:  []string{s.stream, id},
			Count:    int64(n),
			Block:    s.cfg.BlockTime,
		}).Result()
		if errors.Is(err, goredis.Nil) {
			err = nil
		}
		if err != nil {
			s.release(n)
			s.endBundle()
			if s.ctx.Err() != nil {
				return
			}
			s.readFailed(err, retry)
			continue
		}
		retry.Reset()
		var entries []goredis.XMessage
		if len(streams) > 0 {
			entries = streams[0].Messages
		}
		s.release(n - len(entries))
		if pendingFrom != "" {
			if len(entries) == 0 {
				pendingFrom = "" // own backlog done: on to new entries
			} else {
				pendingFrom = entries[len(entries)-1].ID
				s.log.Info("redis: redelivering entries left pending by an earlier run", "count", len(entries))
			}
		}
		s.deliverAll(entries, id != ">")
		if len(entries) > 0 && len(entries) < n && s.cfg.ReadPace > 0 && !sleep(s.ctx.Done(), s.cfg.ReadPace) {
			return
		}
	}
}

// readFailed handles a failed XREADGROUP: it recreates a lost group and
// backs off otherwise.
func (s *subscription) readFailed(err error, retry *backoff.ExponentialBackOff) {
	s.readErrors.Add(1)
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		s.log.Warn("redis: consumer group lost (Redis restarted without persistence, or the stream was deleted); recreating it",
			"error", err)
		cerr := s.createGroup(s.ctx, s.stream)
		if cerr == nil {
			s.groupsRecreated.Add(1)
			return
		}
		err = cerr
	}
	s.errs.permanent("read "+s.stream, err) // reading is retried all the same: it is the subscriber's one job
	wait := retry.NextBackOff()
	s.log.Warn("redis: read failed, backing off", "error", err, "backoff", wait)
	sleep(s.ctx.Done(), wait)
}

// claim takes over entries that other consumers left idle, every
// ClaimInterval, backing off while Redis fails. It waits for free slots to
// claim into; keepAlive, which needs none, runs beside it.
func (s *subscription) claim() {
	start := "0-0"
	every(s.ctx.Done(), s.cfg.ClaimInterval, func() error {
		for {
			n := s.acquire(s.cfg.BatchSize)
			if n == 0 {
				return nil // the subscription ended
			}
			entries, next, err := s.client.XAutoClaim(s.ctx, &goredis.XAutoClaimArgs{
				Stream:   s.stream,
				Group:    s.cfg.Group,
				Consumer: s.cfg.Consumer,
				MinIdle:  s.cfg.MaxIdleTime,
				Start:    start,
				Count:    int64(n),
			}).Result()
			if err != nil {
				s.release(n)
				s.endBundle()
				if s.ctx.Err() == nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
					s.log.Warn("redis: claiming idle entries failed", "error", err)
				}
				return err
			}
			s.release(n - len(entries))
			s.claimed.Add(uint64(s.deliverAll(entries, true)))
			start = next
			if start == "0-0" {
				return nil // scanned the whole pending list
			}
		}
	})
}

// keepAlive resets the idle time of the entries in hand every
// ClaimInterval, with XCLAIM JUSTID, which does not count as a delivery, so
// that no other consumer claims an entry this one still works on: one
// waiting out a nack delay, or a database outage with every slot taken.
// It takes no slot, so a full in-flight limit never stops it; Config
// requires MaxIdleTime to be at least three ClaimIntervals, so that an
// entry in hand is refreshed at least twice before another consumer may
// claim it. While Redis fails it backs off as claim does: until Redis
// answers again no refresh could succeed anyway.
func (s *subscription) keepAlive() {
	every(s.ctx.Done(), s.cfg.ClaimInterval, func() error {
		for chunk := range slices.Chunk(s.held(), s.cfg.BatchSize) {
			err := s.client.XClaimJustID(s.ctx, &goredis.XClaimArgs{
				Stream: s.stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer, Messages: chunk,
			}).Err()
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("redis: keeping entries in hand failed", "count", len(chunk), "error", err)
				}
				return err
			}
		}
		return nil
	})
}
