package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// entryIDField carries an entry's stream id from the client to the
// Unmarshaller. Watermill's redisstream subscriber hands the unmarshaller
// only an entry's fields, not its id, yet the poison stream must name the
// source entry; this hook stamps the id into the fields of every entry that
// XREADGROUP and XCLAIM return.
const entryIDField = "\x00sensorhub_entry_id"

type entryIDHook struct{}

func (entryIDHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (entryIDHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (entryIDHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		switch c := cmd.(type) {
		case *goredis.XStreamSliceCmd:
			if cmd.Name() == "xreadgroup" {
				for _, stream := range c.Val() {
					stampEntryIDs(stream.Messages)
				}
			}
		case *goredis.XMessageSliceCmd:
			if cmd.Name() == "xclaim" {
				stampEntryIDs(c.Val())
			}
		}
		return err
	}
}

func stampEntryIDs(msgs []goredis.XMessage) {
	for i := range msgs {
		if msgs[i].Values == nil {
			// XCLAIM returns no fields for an entry deleted meanwhile.
			msgs[i].Values = make(map[string]any, 1)
		}
		msgs[i].Values[entryIDField] = msgs[i].ID
	}
}
