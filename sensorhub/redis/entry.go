package redis

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// PayloadFields are the entry fields a message's JSON is read from, in order
// of preference. "payload" is Watermill's layout; the others are what
// hand-written producers use. Part of the wire contract.
var PayloadFields = []string{"payload", "data", "body", "message"}

// maxListedNames bounds the field names an unsupported entry's error lists,
// in bytes: the names of a hostile entry may be of any length.
const maxListedNames = 200

// messageOf turns any stream entry into a message and never fails: an entry
// without a payload field gets the sensorhub.MetadataInvalidEntry metadata,
// so that the hub poisons it instead of the subscription failing. A message
// a Watermill publisher wrote keeps its UUID; any other takes the entry id,
// unique within its stream and free to make.
func messageOf(id string, values map[string]any) *message.Message {
	_, hasUUID := values[redisstream.UUIDHeaderKey]
	_, hasPayload := values["payload"]
	if hasUUID && hasPayload {
		// A Watermill publisher wrote it; its metadata may still be
		// corrupt, in which case the fallback below reads the payload.
		if msg, err := (redisstream.DefaultMarshallerUnmarshaller{}).Unmarshal(values); err == nil {
			if msg.Metadata == nil {
				msg.Metadata = make(message.Metadata)
			}
			return msg
		}
	}
	for _, field := range PayloadFields {
		switch v := values[field].(type) {
		case nil:
			continue
		case string: // what go-redis reads: copied once, not twice through fmt
			return message.NewMessage(id, []byte(v))
		default:
			return message.NewMessage(id, []byte(fmt.Sprint(v)))
		}
	}
	// Keep what arrived, as JSON, so the poison stream shows it.
	raw, err := json.Marshal(values)
	if err != nil {
		raw = []byte(fmt.Sprint(values))
	}
	msg := message.NewMessage(id, raw)
	names := slices.Sorted(maps.Keys(values))
	listed := strings.Join(names, ", ")
	if len(listed) > maxListedNames {
		listed = strings.ToValidUTF8(listed[:maxListedNames], "") + "…"
	}
	msg.Metadata.Set(sensorhub.MetadataInvalidEntry, fmt.Sprintf(
		"stream entry has no payload field (want one of %s; has %d fields: %s)",
		strings.Join(PayloadFields, ", "), len(names), listed))
	return msg
}
