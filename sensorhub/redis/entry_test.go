package redis

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"

	"github.com/sensorhub/sensorhub/sensorhub"
)

func TestMessageOfEveryLayout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		values      map[string]any
		wantPayload string
		wantInvalid bool
	}{
		{name: "payload field", values: map[string]any{"payload": `{"a":1}`}, wantPayload: `{"a":1}`},
		{name: "data field", values: map[string]any{"data": `{"a":2}`}, wantPayload: `{"a":2}`},
		{name: "body field", values: map[string]any{"body": `{"a":3}`}, wantPayload: `{"a":3}`},
		{name: "message field", values: map[string]any{"message": `{"a":4}`}, wantPayload: `{"a":4}`},
		{name: "a value other than a string is printed", values: map[string]any{"payload": 14}, wantPayload: "14"},
		{name: "payload wins over data", values: map[string]any{"data": "x", "payload": "y"}, wantPayload: "y"},
		{name: "watermill layout", values: map[string]any{redisstream.UUIDHeaderKey: "u-1", "payload": "p", "metadata": ""}, wantPayload: "p"},
		{name: "watermill layout with corrupt metadata falls back", values: map[string]any{redisstream.UUIDHeaderKey: "u-1", "payload": "p", "metadata": "\xff\xff"}, wantPayload: "p"},
		{name: "no payload field is marked invalid", values: map[string]any{"temp": "14"}, wantInvalid: true},
		{name: "no fields at all is marked invalid", values: map[string]any{}, wantInvalid: true},
		{name: "watermill UUID without a payload is marked invalid", values: map[string]any{redisstream.UUIDHeaderKey: "u-1", "metadata": ""}, wantInvalid: true},
		{name: "a huge field name is listed cut", values: map[string]any{strings.Repeat("n", 1<<16): "x"}, wantInvalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := messageOf("1-0", tt.values)
			invalid := msg.Metadata.Get(sensorhub.MetadataInvalidEntry)
			if got := invalid != ""; got != tt.wantInvalid {
				t.Fatalf("invalid = %q, want invalid %v", invalid, tt.wantInvalid)
			}
			if len(invalid) > maxListedNames+200 {
				t.Errorf("invalid entry text of %d bytes; the field names must be cut", len(invalid))
			}
			if !tt.wantInvalid && string(msg.Payload) != tt.wantPayload {
				t.Errorf("payload = %q, want %q", msg.Payload, tt.wantPayload)
			}
			if msg.UUID == "" {
				t.Error("message has no UUID")
			}
		})
	}
}
