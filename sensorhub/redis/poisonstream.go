package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// clockSkew is how far the clock of the poison stream's Redis may lag
// behind that of the source stream's: a record of a source entry is looked
// for from the entry's time less clockSkew. On a Redis Cluster both streams
// share a master (see the package doc), and the margin covers a replica
// promoted with a clock behind its old master's.
const clockSkew = time.Minute

// scanPage is how many poison entries one XRANGE of a record lookup reads.
const scanPage = 128

// poisonStream appends PoisonRecords to the one poison stream so that each
// source entry has at most one record there, with single-key commands only
// (no MULTI, no script: see the package doc).
type poisonStream struct {
	client goredis.UniversalClient
	// scan reads records for recordsOf: with Config.Options, a client whose
	// connections drop long fields as they arrive, so that a lookup in a
	// long poison stream does not read every payload into memory.
	scan goredis.UniversalClient
	name string
}

// add appends a record of the source entry entryID, with the field values
// of an XADD (a slice of names and values, or a map), then settles: of all
// the records of entryID, the earliest stays and the others go. It reports
// whether the record it added is the one that stays; false means an
// earlier poisoning of the same entry, by a process that crashed before
// its XACK or by another replica, had already written one. A record
// without entryID is simply added.
func (p *poisonStream) add(ctx context.Context, entryID string, values any) (added bool, err error) {
	id, err := p.client.XAdd(ctx, &goredis.XAddArgs{Stream: p.name, Values: values}).Result()
	if err != nil {
		return false, fmt.Errorf("append to %q: %w", p.name, err)
	}
	if entryID == "" {
		return true, nil
	}
	ids, err := p.recordsOf(ctx, entryID, id)
	if err != nil {
		return false, err
	}
	if len(ids) == 0 { // deleted meanwhile: replayed already
		return false, nil
	}
	if len(ids) > 1 {
		if err := p.client.XDel(ctx, p.name, ids[1:]...).Err(); err != nil {
			return false, fmt.Errorf("delete duplicate records of entry %s from %q: %w", entryID, p.name, err)
		}
	}
	return ids[0] == id, nil
}

// recordsOf returns the ids of the poison records of the source entry
// entryID, oldest first, given the id of one of them, added. It reads the
// poison stream from the entry's time on, less clockSkew, since no record
// of an entry predates it; an entry whose id lies ahead of added (its
// producer chose it) is looked for in the whole stream.
func (p *poisonStream) recordsOf(ctx context.Context, entryID, added string) ([]string, error) {
	var ids []string
	start := "-"
	if t, ok := idTime(entryID); ok {
		if a, ok := idTime(added); ok && t <= a && t > uint64(clockSkew.Milliseconds()) {
			start = strconv.FormatUint(t-uint64(clockSkew.Milliseconds()), 10)
		}
	}
	for {
		page, err := p.scan.XRangeN(ctx, p.name, start, "+", scanPage).Result()
		if err != nil {
			return nil, fmt.Errorf("look for records of entry %s in %q: %w", entryID, p.name, err)
		}
		for _, m := range page {
			if v, _ := m.Values[sensorhub.MetadataEntryID].(string); v == entryID {
				ids = append(ids, m.ID)
			}
		}
		if len(page) < scanPage {
			return ids, nil
		}
		start = "(" + page[len(page)-1].ID
	}
}

// idTime returns the millisecond time of a stream entry id.
func idTime(id string) (uint64, bool) {
	ms, _, _ := strings.Cut(id, "-")
	t, err := strconv.ParseUint(ms, 10, 64)
	return t, err == nil
}
