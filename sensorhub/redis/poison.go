package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// PoisonEntry is one message in the poison stream.
type PoisonEntry struct {
	// ID is the entry's id in the poison stream.
	ID string
	// Payload is the original message, unchanged.
	Payload string
	// Reason is the reason code, one of the sensorhub.Reason* constants.
	Reason string
	// Error describes the problem for humans.
	Error string
	// SourceID is the id the message had in the source stream.
	SourceID string
	// PoisonedAt is when the message was poisoned (zero if unknown).
	PoisonedAt time.Time
}

// PoisonQueue reads the poison stream and sends its messages back.
type PoisonQueue struct {
	client goredis.UniversalClient
	poison string
	target string
}

// NewPoisonQueue returns a PoisonQueue for the poison stream of stream
// (stream + sensorhub.PoisonSuffix); Replay appends to stream.
func NewPoisonQueue(client goredis.UniversalClient, stream string) *PoisonQueue {
	return &PoisonQueue{client: client, poison: stream + sensorhub.PoisonSuffix, target: stream}
}

// Len returns the number of entries in the poison stream.
func (q *PoisonQueue) Len(ctx context.Context) (int64, error) {
	n, err := q.client.XLen(ctx, q.poison).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: poison queue %q: length: %w", q.poison, err)
	}
	return n, nil
}

// List returns up to count entries, oldest first, starting after the entry
// id after ("" for the beginning).
func (q *PoisonQueue) List(ctx context.Context, after string, count int64) ([]PoisonEntry, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := q.client.XRangeN(ctx, q.poison, start, "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: poison queue %q: list: %w", q.poison, err)
	}
	entries := make([]PoisonEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = poisonEntry(m)
	}
	return entries, nil
}

func poisonEntry(m goredis.XMessage) PoisonEntry {
	str := func(key string) string { s, _ := m.Values[key].(string); return s }
	e := PoisonEntry{
		ID:       m.ID,
		Payload:  str("payload"),
		Reason:   str(sensorhub.MetadataReason),
		Error:    str(sensorhub.MetadataError),
		SourceID: str(sensorhub.MetadataEntryID),
	}
	e.PoisonedAt, _ = time.Parse(time.RFC3339Nano, str(sensorhub.MetadataPoisonedAt))
	return e
}

// Replay sends the entries with the given ids (all entries when ids is
// empty) back to the source stream, each as a plain payload entry, and
// removes them from the poison stream. Each entry moves in one MULTI/EXEC
// transaction, so none is lost or doubled by a failure midway. It returns
// how many entries moved.
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
		payload := poisonEntry(m).Payload
		_, err := q.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.XAdd(ctx, &goredis.XAddArgs{Stream: q.target, Values: []any{"payload", payload}})
			p.XDel(ctx, q.poison, m.ID)
			return nil
		})
		if err != nil {
			return i, fmt.Errorf("redis: poison queue %q: replay %s: %w", q.poison, m.ID, err)
		}
	}
	return len(msgs), nil
}

// ErrNoEntry is returned by Replay for an id that is not in the poison
// stream.
var ErrNoEntry = errors.New("no such entry")
