-- Stateful processing (docs/processing.md): the cursor and state of every
-- processor per (station, sensor) series, and the threshold rules that the
-- built-in alarm processor (package sinks/postgres/alarms) runs. Never edit
-- this file once shipped.

-- +goose Up

-- One row per processor and series. The Postgres sink locks the rows of the
-- series a transaction touches, hands the processor the readings with
-- processed_until < ts <= max_ts - reorder window in device-time order, and
-- saves state and cursor in the same transaction as those readings.
CREATE TABLE processor_cursors (
    processor       text        NOT NULL,               -- Processor.Name()
    station         text        NOT NULL,
    sensor          text        NOT NULL,
    processed_until timestamptz NOT NULL,               -- readings up to here were processed
    max_ts          timestamptz NOT NULL,               -- latest device time stored
    state           jsonb,                              -- the processor's own, null until saved
    updated_at      timestamptz NOT NULL DEFAULT now(), -- server time a reading last arrived
    PRIMARY KEY (processor, station, sensor)
);

-- No index beyond the key: the rows are updated by every commit, and without
-- an index on the updated columns those updates stay HOT (no index writes).
-- The flusher scans the table, one row per processor and series.

-- Threshold rules, managed with `sensorhub rule add|list|remove` and seeded
-- from SENSORHUB_THRESHOLDS. station null: the rule is for every station.
CREATE TABLE threshold_rules (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor     text             NOT NULL,
    station    text,
    op         text             NOT NULL CHECK (op IN ('>', '<')),
    threshold  double precision NOT NULL,
    clear      double precision NOT NULL,
    created_at timestamptz      NOT NULL DEFAULT now()
);

-- One rule per sensor type, station (or every station) and direction.
CREATE UNIQUE INDEX threshold_rules_target ON threshold_rules (sensor, coalesce(station, ''), op);

-- +goose Down
DROP TABLE threshold_rules;
DROP TABLE processor_cursors;
