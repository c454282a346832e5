package redis

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// ReasonRedeliveryLimit is the poison reason of an entry delivered more than
// Config.MaxDeliveries times. Part of the wire contract.
const ReasonRedeliveryLimit = "redelivery_limit"

// poisonPayloadField is the field of a poison entry that holds the
// poisoned message, as in Watermill's layout.
const poisonPayloadField = "payload"

// PoisonRecord is one entry of the poison stream, in the one layout every
// poison path writes (the hub's poison publisher, the subscriber's
// redelivery limit, Redis's own move of a too-large entry) and the poison
// queue reads: the fields payload, reason, error, entry_id and poisoned_at
// (see the sensorhub.Metadata* keys). Part of the wire contract.
type PoisonRecord struct {
	// ID is the entry's id in the poison stream; empty until it is there.
	ID string
	// Payload is the original message, unchanged.
	Payload []byte
	// Reason is the reason code, ReasonRedeliveryLimit or one of the
	// sensorhub.Reason* constants.
	Reason string
	// Error describes the problem for humans.
	Error string
	// EntryID is the id the message had in the source stream.
	EntryID string
	// PoisonedAt is when the message was poisoned (zero if unknown).
	PoisonedAt time.Time
}

// poisonRecordOf reads a poison record from the metadata and payload of a
// message the hub poisons.
func poisonRecordOf(msg *message.Message) PoisonRecord {
	r := PoisonRecord{
		Payload: msg.Payload,
		Reason:  msg.Metadata.Get(sensorhub.MetadataReason),
		Error:   msg.Metadata.Get(sensorhub.MetadataError),
		EntryID: msg.Metadata.Get(sensorhub.MetadataEntryID),
	}
	r.PoisonedAt, _ = time.Parse(time.RFC3339Nano, msg.Metadata.Get(sensorhub.MetadataPoisonedAt))
	return r
}

// decodePoisonRecord reads a poison record from a poison stream entry.
func decodePoisonRecord(m goredis.XMessage) PoisonRecord {
	str := func(key string) string { s, _ := m.Values[key].(string); return s }
	r := PoisonRecord{
		ID:      m.ID,
		Payload: []byte(str(poisonPayloadField)),
		Reason:  str(sensorhub.MetadataReason),
		Error:   str(sensorhub.MetadataError),
		EntryID: str(sensorhub.MetadataEntryID),
	}
	r.PoisonedAt, _ = time.Parse(time.RFC3339Nano, str(sensorhub.MetadataPoisonedAt))
	return r
}

// xaddValues returns the record as the field names and values of an XADD.
func (r PoisonRecord) xaddValues() []any {
	return append([]any{poisonPayloadField, string(r.Payload)}, r.annotations()...)
}

// annotations returns the fields besides the payload, as names and values,
// leaving out those that are empty: what the too-large script appends to
// the payload it copies inside Redis, and what the publisher adds to
// Watermill's layout.
func (r PoisonRecord) annotations() []any {
	var fields []any
	for _, f := range [...]struct{ name, value string }{
		{sensorhub.MetadataReason, r.Reason},
		{sensorhub.MetadataError, r.Error},
		{sensorhub.MetadataEntryID, r.EntryID},
		{sensorhub.MetadataPoisonedAt, formatTime(r.PoisonedAt)},
	} {
		if f.value != "" {
			fields = append(fields, f.name, f.value)
		}
	}
	return fields
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
