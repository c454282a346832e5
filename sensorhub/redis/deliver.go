package redis

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// deliverAll hands entries to the consumer, in order, from one goroutine
// per read, each holding one slot. Entries already in hand are dropped and
// their slots given back (see hold). Entries with a field over
// MaxFieldBytes, or nacked MaxDeliveries times already, are poisoned
// instead. With Bundles the rest go as one bundle (see deliverBundle);
// otherwise as a message each, with a small goroutine per message that
// waits for its ack or nack, so that acks are not held up behind slower
// messages of the same read and each message's context ends with its ack.
// redelivered tells entries that may have been delivered before (pending or
// claimed), whose nack counts are looked up, from new ones, which have
// none. It returns how many entries it took, and gives back the bundle
// slot of the read once its bundle is settled.
func (s *subscription) deliverAll(entries []goredis.XMessage, redelivered bool) int {
	fresh := s.hold(entries)
	s.release(len(entries) - len(fresh))
	if len(fresh) == 0 {
		s.endBundle()
		return 0
	}
	s.handlers.Go(func() {
		defer s.endBundle()
		nacks := make([]int, len(fresh))
		if redelivered {
			nacks = s.nackCounts(fresh)
		}
		var bundle []pending
		for i, e := range fresh {
			if field, size, ok := s.oversized(e); ok {
				s.poisonOversized(e, field, size)
				continue
			}
			if nacks[i] >= s.cfg.MaxDeliveries {
				s.poisonRedelivered(e, nacks[i]+1)
				continue
			}
			if s.cfg.Bundles {
				bundle = append(bundle, pending{e, nacks[i]})
				continue
			}
			msg, cancel, ok := s.deliver(e)
			if !ok {
				return // the rest stays pending in Redis; the next run delivers it
			}
			n := nacks[i]
			s.handlers.Go(func() {
				if !s.await(e.ID, msg, cancel) && s.ctx.Err() == nil {
					s.redeliver(e, n)
				}
			})
		}
		if len(bundle) > 0 {
			s.deliverBundle(bundle)
		}
	})
	return len(fresh)
}

// pending is an entry on its way to the consumer with the nacks it had.
type pending struct {
	entry goredis.XMessage
	nacks int
}

// deliverBundle hands entries to the consumer as one bundle and waits for
// it to be settled. Then it acks the entries whose messages were acked, and
// redelivers the others (nacked, or left unsettled by a handler that
// panicked) one by one.
func (s *subscription) deliverBundle(entries []pending) {
	ctx, cancel := context.WithCancel(s.drain)
	defer cancel()
	msgs := make([]*message.Message, len(entries))
	for i, p := range entries {
		msgs[i] = messageOf(p.entry.ID, p.entry.Values)
		msgs[i].Metadata.Set(sensorhub.MetadataEntryID, p.entry.ID)
		msgs[i].SetContext(ctx)
	}
	bundle := sensorhub.NewBundle(ctx, "bundle-"+entries[0].entry.ID, msgs)
	select {
	case s.out <- bundle:
		s.delivered.Add(uint64(len(msgs)))
	case <-s.ctx.Done():
		return // the entries stay pending in Redis; the next run delivers them
	}
	select {
	case <-bundle.Acked():
	case <-bundle.Nacked():
	case <-s.drain.Done():
		return
	}
	for i, msg := range msgs {
		select {
		case <-msg.Acked():
			s.acks <- entries[i].entry.ID
			continue
		default:
		}
		s.nacked.Add(1)
		if s.ctx.Err() == nil {
			p := entries[i]
			s.handlers.Go(func() { s.redeliver(p.entry, p.nacks) })
		}
	}
}

// deliver hands e to the consumer as a message with a context of its own
// under the drain context, for await to cancel. It reports false, with the
// entry still pending in Redis, when the subscription ends first.
func (s *subscription) deliver(e goredis.XMessage) (*message.Message, context.CancelFunc, bool) {
	msg := messageOf(e.ID, e.Values)
	msg.Metadata.Set(sensorhub.MetadataEntryID, e.ID)
	ctx, cancel := context.WithCancel(s.drain)
	msg.SetContext(ctx)
	select {
	case s.out <- msg:
		s.delivered.Add(1)
		return msg, cancel, true
	case <-s.ctx.Done():
		cancel()
		return nil, nil, false
	}
}

// await waits for msg's ack or nack, then cancels the message's context, as
// Watermill's subscribers do once a message is finished. It reports false
// after a nack, true when done with the entry: acked, or given up at the end
// of the drain.
func (s *subscription) await(id string, msg *message.Message, cancel context.CancelFunc) bool {
	defer cancel()
	select {
	case <-msg.Acked():
		s.acks <- id
		return true
	case <-msg.Nacked():
		s.nacked.Add(1)
		return false
	case <-s.drain.Done():
		return true
	}
}

// redeliver delivers a nacked entry again after NackDelay, doubling the
// delay after each further nack up to MaxNackDelay, until it is acked, the
// subscription ends, or the entry's handler failed MaxDeliveries times and
// it is poisoned. nacks is the count before this nack. A nack is counted
// once its delay has passed: a nack that the stop of the consumer caused
// (the hub ends its retries while the database is down) finds the
// subscription ended and leaves the entry pending, its budget unspent.
func (s *subscription) redeliver(e goredis.XMessage, nacks int) {
	delay := newBackoff(s.cfg.NackDelay, s.cfg.MaxNackDelay)
	for sleep(s.ctx.Done(), delay.NextBackOff()) {
		nacks = s.countNack(e.ID, nacks)
		if nacks >= s.cfg.MaxDeliveries {
			// poisonRedelivered counts the delivery that is not going to happen.
			s.poisonRedelivered(e, nacks+1)
			return
		}
		msg, cancel, ok := s.deliver(e)
		if !ok {
			return // stays pending in Redis; the next run delivers it
		}
		if s.await(e.ID, msg, cancel) {
			return
		}
	}
}
