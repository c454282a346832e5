-- Staleness (DESIGN.md §16): one row per (station, sensor) series, holding when
-- it last got a new reading, its expected interval and whether it is stale.
-- The Postgres sink updates a row in the transaction that stores the series'
-- new readings; the staleness sweeper flips it stale. Both write their
-- sensor.stale / sensor.recovered events into the outbox in the same
-- transaction, so each transition is announced once. Package
-- sinks/postgres/staleness owns the queries. Never edit this file once
-- shipped.
--
-- Self-contained on purpose: no reference to stations (0003) or any later
-- table, so that it applies whatever else is there.

-- +goose Up
CREATE TABLE sensor_status (
    station            text        NOT NULL,
    sensor             text        NOT NULL,
    -- Newest device time stored; null until the first reading.
    last_ts            timestamptz,
    -- Arrival time (the readings' received_at) of the last transaction that
    -- stored a new reading of the series; null until the first reading.
    last_received_at   timestamptz,
    -- The most recent gaps between arrivals, in seconds, oldest first.
    gaps               double precision[] NOT NULL DEFAULT '{}',
    -- Median of gaps once there are enough of them, in seconds.
    learned_interval_s double precision,
    -- Expected interval set by hand, in seconds; overrides the learned one.
    interval_s         double precision CHECK (interval_s > 0),
    stale              boolean     NOT NULL DEFAULT false,
    -- Stale and recovered transitions so far: odd while stale. It numbers
    -- the transitions, from which their events' UUIDs are derived.
    transitions        bigint      NOT NULL DEFAULT 0,
    -- When stale last changed; null before the first transition.
    changed_at         timestamptz,
    PRIMARY KEY (station, sensor)
);

-- +goose Down
DROP TABLE sensor_status;
