package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// ErrNoEntry is returned by Replay for an id that is not in the poison
// stream.
var ErrNoEntry = errors.New("no such entry")

// PoisonQueue reads the poison stream and sends its messages back to the
// stream. Get one from Transport.PoisonQueue.
type PoisonQueue struct {
	client goredis.UniversalClient
	poison string
	target string
}

// Len returns the number of entries in the poison stream.
func (q *PoisonQueue) Len(ctx context.Context) (int64, error) {
	n, err := q.client.XLen(ctx, q.poison).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: poison queue %q: length: %w", q.poison, err)
	}
	return n, nil
}

// List returns up to count records, oldest first, starting after the entry
// id after ("" for the beginning).
func (q *PoisonQueue) List(ctx context.Context, after string, count int64) ([]PoisonRecord, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := q.client.XRangeN(ctx, q.poison, start, "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: poison queue %q: list: %w", q.poison, err)
	}
	records := make([]PoisonRecord, len(msgs))
	for i, m := range msgs {
		records[i] = decodePoisonRecord(m)
	}
	return records, nil
}

// Replay sends the entries with the given ids (all entries when ids is
// empty) back to the source stream, each as a plain payload entry, and
// then removes them from the poison stream: two single-key commands, no
// MULTI, so that it works for the documented ACL user and on a Redis
// Cluster. A failure between the two leaves the entry in the poison stream
// as well: none is lost, and one replayed again is stored once, since the
// sink drops readings it already holds. It returns how many entries moved.
func (q *PoisonQueue) Replay(ctx context.Context, ids []string) (int, error) {
	var msgs []goredis.XMessage
	if len(ids) == 0 {
		var err error
		if msgs, err = q.client.XRange(ctx, q.poison, "-", "+").Result(); err != nil {
			return 0, fmt.Errorf("redis: poison queue %q: replay: %w", q.poison, err)
		}
	}
	for _, id := range ids {
		m, err := q.client.XRange(ctx, q.poison, id, id).Result()
		if err != nil {
			return 0, fmt.Errorf("redis: poison queue %q: replay %s: %w", q.poison, id, err)
		}
		if len(m) == 0 {
			return 0, fmt.Errorf("redis: poison queue %q: replay: %w: %s", q.poison, ErrNoEntry, id)
		}
		msgs = append(msgs, m...)
	}
	for i, m := range msgs {
		payload := string(decodePoisonRecord(m).Payload)
		err := q.client.XAdd(ctx, &goredis.XAddArgs{Stream: q.target, Values: []any{poisonPayloadField, payload}}).Err()
		if err != nil {
			return i, fmt.Errorf("redis: poison queue %q: replay %s to %q: %w", q.poison, m.ID, q.target, err)
		}
		if err := q.client.XDel(ctx, q.poison, m.ID).Err(); err != nil {
			return i, fmt.Errorf("redis: poison queue %q: replay %s: delete after appending to %q: %w", q.poison, m.ID, q.target, err)
		}
	}
	return len(msgs), nil
}
