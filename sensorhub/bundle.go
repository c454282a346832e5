package sensorhub

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// bundleKey is the context key of a bundle's messages.
type bundleKey struct{}

// NewBundle returns one message that carries msgs, for a transport that
// reads many messages at a time: the router then runs its goroutine and its
// middleware once per bundle instead of once per message, which in a drain
// cost more CPU than decoding and storing the readings.
//
// The hub handles every message of a bundle as it handles a message alone:
// it decodes, validates, stores and retries each on its own, poisons only
// the invalid ones, and acks or nacks each. It acks the bundle once every
// message in it is settled. A transport therefore settles its entries by
// the messages in the bundle, never by the bundle, and treats a message
// still unsettled when the bundle is acked or nacked (a handler panicked)
// as nacked. The bundle's context is ctx, which the messages should share.
func NewBundle(ctx context.Context, uuid string, msgs []*message.Message) *message.Message {
	b := message.NewMessage(uuid, nil)
	b.SetContext(context.WithValue(ctx, bundleKey{}, msgs))
	return b
}

// Bundled returns the messages msg carries and true when msg is a bundle
// made by NewBundle.
func Bundled(msg *message.Message) ([]*message.Message, bool) {
	msgs, ok := msg.Context().Value(bundleKey{}).([]*message.Message)
	return msgs, ok
}
