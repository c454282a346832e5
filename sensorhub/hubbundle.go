package sensorhub

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// unbundle handles the messages of a bundle (see NewBundle) itself and
// hands any other message on down the chain. It runs outside the timeout
// middleware: each attempt at the bundle's messages has a HandlerTimeout
// of its own, and a sink outage is waited out across attempts.
func (h *Hub) unbundle(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		msgs, ok := Bundled(msg)
		if !ok {
			return next(msg)
		}
		h.consumeBundle(msg.Context(), msgs)
		return nil, nil
	}
}

// consumeBundle processes msgs as the middleware chain processes one
// message each, and settles every one of them: acked once stored or
// poisoned, nacked after its retries. Messages failing with a transient
// error are retried together, with retryTransient's backoff and limits.
func (h *Hub) consumeBundle(ctx context.Context, msgs []*message.Message) {
	h.received.Add(uint64(len(msgs)))
	h.active.Add(int64(len(msgs)))
	todo := msgs
	var wait retryWait
	for retry := 0; ; retry++ {
		errs := h.processBundle(ctx, todo)
		var again []*message.Message
		for i, msg := range todo {
			switch err := errs[i]; {
			case err == nil:
				msg.Ack()
			case IsPermanent(err):
				h.poison(ctx, msg, err)
			case retry >= h.cfg.MaxRetries && !isOutage(err):
				msg.Nack()
			default:
				if isOutage(err) {
					h.warnOutage(ctx, err)
				}
				again = append(again, msg)
				continue
			}
			h.active.Add(-1)
		}
		if len(again) == 0 {
			return
		}
		if retry == 0 {
			wait = h.newRetryWait()
		}
		if !wait.next(ctx, h.stopped) {
			for _, msg := range again {
				msg.Nack()
			}
			h.active.Add(-int64(len(again)))
			return
		}
		h.retried.Add(uint64(len(again)))
		todo = again
	}
}

// processBundle is one attempt at msgs: each is decoded and handled on its
// own, and the batches of the valid ones are written together, each with
// its own outcome. It returns one error per message.
func (h *Hub) processBundle(ctx context.Context, msgs []*message.Message) []error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HandlerTimeout)
	defer cancel()
	batches, errs := make([]Batch, len(msgs)), make([]error, len(msgs))
	for i, msg := range msgs {
		if why := msg.Metadata.Get(MetadataInvalidEntry); why != "" {
			errs[i] = &InputError{Reason: ReasonUnsupportedEntry, Index: -1, Err: errors.New(why)}
			continue
		}
		batches[i], errs[i] = h.prepare(ctx, msg.Payload)
	}
	results, writeErrs := h.writeAll(ctx, batches)
	for i := range msgs {
		if errs[i] == nil && !batches[i].Empty() {
			_, errs[i] = h.count(batches[i], results[i], writeErrs[i])
		}
	}
	return errs
}

// writeAll writes batches, an empty one for a message that failed before,
// through the group commit when there is one, else one by one.
func (h *Hub) writeAll(ctx context.Context, batches []Batch) ([]WriteResult, []error) {
	if h.batcher != nil {
		return h.batcher.WriteAll(ctx, batches)
	}
	results, errs := make([]WriteResult, len(batches)), make([]error, len(batches))
	for i, b := range batches {
		if !b.Empty() {
			results[i], errs[i] = h.sink.Write(ctx, b)
		}
	}
	return results, errs
}

// poison publishes one message of a bundle to the poison queue, with the
// metadata Watermill's poison queue middleware and annotatePoisoned give a
// message alone, and acks it; it nacks it when the publish fails, so that
// it is delivered and poisoned again.
func (h *Hub) poison(ctx context.Context, msg *message.Message, err error) {
	h.annotatePoison(msg, err)
	msg.Metadata.Set(middleware.ReasonForPoisonedKey, err.Error())
	msg.Metadata.Set(middleware.PoisonedTopicKey, message.SubscribeTopicFromCtx(ctx))
	msg.Metadata.Set(middleware.PoisonedHandlerKey, message.HandlerNameFromCtx(ctx))
	msg.Metadata.Set(middleware.PoisonedSubscriberKey, message.SubscriberNameFromCtx(ctx))
	if err := (poisonCounter{h}).Publish(h.cfg.PoisonStream, msg); err != nil {
		h.log.Error("sensorhub: publish to the poison queue failed; the message is redelivered", "error", err,
			"entry_id", msg.Metadata.Get(MetadataEntryID))
		msg.Nack()
		return
	}
	msg.Ack()
}
