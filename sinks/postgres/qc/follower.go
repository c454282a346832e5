package qc

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Follower is computed from stored readings, leaving out those flagged
// fail (4), and follows their flags when they change outside the sink
// (package derived's Processor is one). Flag, Rebuild and Follow call
// FollowFlags in the transaction that changed the flags, holding the
// station's lock, once per series in which some readings became or
// stopped being fail; the events it returns are written to the outbox with
// quality control's own (none with Config.DisableEvents). The sink does
// not call it: there the processors after quality control get the same
// readings in postgres.Series.Revised.
type Follower interface {
	FollowFlags(ctx context.Context, tx pgx.Tx, r Reflagged) ([]sensorhub.Event, error)
}

// Reflagged is what a Follower is handed: stored readings of the series
// Station/Sensor whose flag became or stopped being 4 (fail), in
// device-time order, with their values as stored. Their new flags are in
// the table.
type Reflagged struct {
	Station, Sensor string
	Readings        []sensorhub.Reading
}

// follow hands the readings of walk k that became or stopped being fail to
// the followers, within tx, and returns their events.
func (p *Processor) follow(ctx context.Context, tx pgx.Tx, k *walk) ([]sensorhub.Event, error) {
	r := Reflagged{Station: k.station, Sensor: k.sensor, Readings: k.failChanged()}
	if len(r.Readings) == 0 {
		return nil, nil
	}
	var events []sensorhub.Event
	for _, f := range p.followers {
		evs, err := f.FollowFlags(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}
