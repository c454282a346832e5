package redis

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// poisonRedelivered moves an entry that was delivered too often to the
// poison stream and acks it, in one MULTI/EXEC, so it is neither lost nor
// doubled.
func (s *subscription) poisonRedelivered(e goredis.XMessage, deliveries int) {
	record := PoisonRecord{
		Payload: messageOf(e.ID, e.Values).Payload,
		Reason:  ReasonRedeliveryLimit,
		// deliveries counts the delivery that is not going to happen.
		Error:      fmt.Sprintf("%s: delivered %d times, limit %d", ReasonRedeliveryLimit, deliveries-1, s.cfg.MaxDeliveries),
		EntryID:    e.ID,
		PoisonedAt: time.Now(),
	}
	moved := s.untilDone(e.ID, func() error {
		_, err := s.client.TxPipelined(s.ctx, func(p goredis.Pipeliner) error {
			p.XAdd(s.ctx, &goredis.XAddArgs{Stream: s.cfg.PoisonStream, Values: record.xaddValues()})
			p.XAck(s.ctx, s.stream, s.cfg.Group, e.ID)
			p.HDel(s.ctx, nackKey(s.stream), e.ID)
			return nil
		})
		return err
	})
	if !moved {
		return // stays pending; the limit is checked again on the next delivery
	}
	s.poisoned.Add(1)
	s.log.Warn("redis: entry poisoned", "reason", ReasonRedeliveryLimit, "entry_id", e.ID, "deliveries", deliveries-1)
	s.done(e.ID)
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

// poisonOversizedScript moves an entry with a field too large to read to
// the poison stream inside Redis, so that the field never crosses the
// network, and acks it. The poison entry's payload is the entry's first
// payload field, or else, as messageOf does, its fields as a JSON object. An
// entry no longer pending in the group (another consumer finished it) is
// left alone, and one trimmed from the stream is poisoned with an empty
// payload.
//
// KEYS: the stream, the poison stream. ARGV: the group, the entry id, the
// name of the poison entry's payload field, the number of payload field
// names, those names in order of preference, then the poison record's
// other fields as names and values.
var poisonOversizedScript = goredis.NewScript(`
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then
	return 0
end
local payload = ''
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local k = tonumber(ARGV[4])
if #entry == 1 then
	local fields, values = entry[1][2], {}
	for i = 1, #fields, 2 do
		values[fields[i]] = fields[i + 1]
	end
	payload = nil
	for i = 5, 4 + k do
		if values[ARGV[i]] then
			payload = values[ARGV[i]]
			break
		end
	end
	if payload == nil then
		payload = cjson.encode(values)
	end
end
local add = {'XADD', KEYS[2], '*', ARGV[3], payload}
for i = 5 + k, #ARGV do
	add[#add + 1] = ARGV[i]
end
redis.call(unpack(add))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// poisonOversized moves an entry with a field over MaxFieldBytes to the
// poison stream with sensorhub.ReasonTooLarge, without reading it.
func (s *subscription) poisonOversized(e goredis.XMessage, field string, size int64) {
	record := PoisonRecord{
		Reason:     sensorhub.ReasonTooLarge,
		Error:      fmt.Sprintf("%s: stream entry field %q is %d bytes, limit %d", sensorhub.ReasonTooLarge, field, size, s.cfg.MaxFieldBytes),
		EntryID:    e.ID,
		PoisonedAt: time.Now(),
	}
	args := []any{s.cfg.Group, e.ID, poisonPayloadField, len(PayloadFields)}
	for _, f := range PayloadFields {
		args = append(args, f)
	}
	args = append(args, record.annotations()...)
	var moved int64
	ok := s.untilDone(e.ID, func() error {
		var err error
		moved, err = poisonOversizedScript.Run(s.ctx, s.client, []string{s.stream, s.cfg.PoisonStream}, args...).Int64()
		return err
	})
	if !ok {
		return // stays pending; checked again on the next delivery
	}
	if moved == 1 {
		s.tooLarge.Add(1)
		s.log.Warn("redis: entry poisoned", "reason", sensorhub.ReasonTooLarge, "entry_id", e.ID, "field", field, "bytes", size)
	}
	s.done(e.ID)
}

// untilDone runs f until it succeeds, backing off while Redis fails, and
// reports false when the subscription ends first.
func (s *subscription) untilDone(id string, f func() error) bool {
	retry := newBackoff(minRetryBackoff, maxRetryBackoff)
	for {
		err := f()
		if err == nil {
			return true
		}
		if s.ctx.Err() != nil {
			return false
		}
		s.log.Warn("redis: poisoning an entry failed, retrying", "entry_id", id, "error", err)
		if !sleep(s.ctx.Done(), retry.NextBackOff()) {
			return false
		}
	}
}
