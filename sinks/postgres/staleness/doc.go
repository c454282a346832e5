// Package staleness tells when a sensor stops reporting (DESIGN.md §16):
// per series (station, sensor) it keeps, in the table sensor_status of
// migration 0005, when the series last got a new reading and the interval
// at which readings are expected, and it announces sensor.stale when
// nothing new arrived for Policy.After times that interval, and
// sensor.recovered when something does again. Each transition is announced
// exactly once, across replicas and restarts: the flag and its event
// commit in one transaction, through the outbox.
//
// Two pieces share a Policy:
//
//   - Tracker is a postgres.Observer: inside the sink's transaction it
//     records the arrival of new readings (duplicates do not count) and
//     announces sensor.recovered for a stale series that got one.
//   - Sweeper runs in the background of every replica and announces
//     sensor.stale; replicas skip the rows another one is sweeping.
//
// Staleness is measured on arrival time (readings.received_at, the
// database's clock), never on device time: a station whose clock is wrong
// is still alive. The expected interval is the one set by hand
// (SetInterval), or else the median of the last gaps between arrivals
// (at least Policy.MinInterval), or else Policy.DefaultInterval.
//
//	policy := staleness.Policy{After: 3}
//	sink, err := postgres.New(postgres.Config{DB: pool, Observers: []postgres.Observer{staleness.NewTracker(policy)}})
//	...
//	sweeper, err := staleness.NewSweeper(staleness.Config{DB: pool, Policy: policy})
//	err = sweeper.Start(ctx)
//	defer sweeper.Stop(ctx)
//
//	err = staleness.SetInterval(ctx, pool, "roof", "temperature", time.Minute)
package staleness
