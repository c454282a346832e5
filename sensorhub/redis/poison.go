package redis

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// poisonRedelivered moves an entry that was delivered too often to the
// poison stream and acks it.
func (s *subscription) poisonRedelivered(e goredis.XMessage, deliveries int) {
	s.poison(e, PoisonRecord{
		Payload: messageOf(e.ID, e.Values).Payload,
		Reason:  ReasonRedeliveryLimit,
		// deliveries counts the delivery that is not going to happen.
		Error:      fmt.Sprintf("%s: delivered %d times, limit %d", ReasonRedeliveryLimit, deliveries-1, s.cfg.MaxDeliveries),
		EntryID:    e.ID,
		PoisonedAt: time.Now(),
	}, &s.poisoned, "deliveries", deliveries-1)
}

// poisonOversized moves an entry with a field over MaxFieldBytes to the
// poison stream with sensorhub.ReasonTooLarge and acks it. The field was
// never read (with Config.Options, the connection dropped its bytes), so
// it is not copied: when it is the payload, or the entry has no payload
// field, the record's payload is empty and its error names the field and
// its size; otherwise the record holds the payload.
func (s *subscription) poisonOversized(e goredis.XMessage, field string, size int64) {
	var payload []byte
	if !slices.Contains(PayloadFields, field) && hasPayloadField(e.Values) {
		payload = messageOf(e.ID, e.Values).Payload
	}
	s.poison(e, PoisonRecord{
		Payload:    payload,
		Reason:     sensorhub.ReasonTooLarge,
		Error:      fmt.Sprintf("%s: stream entry field %q is %d bytes, limit %d; not copied", sensorhub.ReasonTooLarge, field, size, s.cfg.MaxFieldBytes),
		EntryID:    e.ID,
		PoisonedAt: time.Now(),
	}, &s.tooLarge, "field", field, "bytes", size)
}

// poison writes record of the entry e to the poison stream, once, and acks
// e: an entry no longer pending in the group (another consumer finished
// it) is left alone; a record an earlier attempt left (a crash before the
// XACK, or another replica holding the same entry) is kept instead of a
// second one (see poisonStream.add). Each step is retried while Redis
// fails for a transient reason. A permanent error (see permanentKind)
// leaves the entry pending, to be tried again when it is next delivered
// or claimed. count counts the records written; logAttrs go to the log.
func (s *subscription) poison(e goredis.XMessage, record PoisonRecord, count *atomic.Uint64, logAttrs ...any) {
	defer s.done(e.ID)
	var pending bool
	if !s.untilDone(e.ID, func() error {
		p, err := s.client.XPendingExt(s.ctx, &goredis.XPendingExtArgs{
			Stream: s.stream, Group: s.cfg.Group, Start: e.ID, End: e.ID, Count: 1,
		}).Result()
		pending = len(p) == 1
		return err
	}) || !pending {
		return
	}
	var added bool
	if !s.untilDone(e.ID, func() error {
		var err error
		added, err = s.poisons.add(s.ctx, e.ID, record.xaddValues())
		return err
	}) {
		return
	}
	if !s.untilDone(e.ID, func() error { return s.client.XAck(s.ctx, s.stream, s.cfg.Group, e.ID).Err() }) {
		return
	}
	// The entry's nack count is of no further use; one left behind by a
	// failed HDEL only takes memory.
	if err := s.client.HDel(s.ctx, nackKey(s.stream), e.ID).Err(); err != nil {
		s.errs.permanent("poison", err)
	}
	if added {
		count.Add(1)
		s.log.Warn("redis: entry poisoned", append([]any{"reason", record.Reason, "entry_id", e.ID}, logAttrs...)...)
	}
}

// oversized reports the first field of e, payload fields first, whose name
// or value is over MaxFieldBytes: dropped by the client's bound, or read
// whole on a connection without one. size is the field's size in bytes.
func (s *subscription) oversized(e goredis.XMessage) (field string, size int64, ok bool) {
	if s.cfg.MaxFieldBytes <= 0 {
		return "", 0, false
	}
	// Most entries have no such field: find that out without allocating.
	for name, v := range e.Values {
		value, _ := v.(string)
		if _, ok = s.bound.Size(value); !ok {
			_, ok = s.bound.Size(name)
		}
		if ok {
			break
		}
	}
	if !ok {
		return "", 0, false
	}
	names := slices.Sorted(maps.Keys(e.Values))
	slices.SortStableFunc(names, func(a, b string) int {
		return cmp.Compare(payloadRank(a), payloadRank(b))
	})
	for _, name := range names {
		value, _ := e.Values[name].(string)
		if n, ok := s.bound.Size(value); ok {
			return name, n, true
		}
		if n, ok := s.bound.Size(name); ok {
			return fmt.Sprintf("(a name of %d bytes)", n), n, true
		}
	}
	return "", 0, false
}

// payloadRank orders field names as messageOf prefers them, any other last.
func payloadRank(name string) int {
	if i := slices.Index(PayloadFields, name); i >= 0 {
		return i
	}
	return len(PayloadFields)
}

// hasPayloadField reports whether an entry has one of PayloadFields.
func hasPayloadField(values map[string]any) bool {
	return slices.ContainsFunc(PayloadFields, func(f string) bool { _, ok := values[f]; return ok })
}

// untilDone runs f until it succeeds, backing off while Redis fails for a
// transient reason. It reports false when the subscription ends first, or
// f fails for a permanent one, which the transport's error log records.
func (s *subscription) untilDone(id string, f func() error) bool {
	retry := newBackoff(minRetryBackoff, maxRetryBackoff)
	for {
		err := f()
		if err == nil {
			return true
		}
		if s.ctx.Err() != nil || s.errs.permanent("poison entry "+id, err) {
			return false
		}
		s.log.Warn("redis: poisoning an entry failed, retrying", "entry_id", id, "error", err)
		if !sleep(s.ctx.Done(), retry.NextBackOff()) {
			return false
		}
	}
}
