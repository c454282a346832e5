-- The table and column names below are a contract (DESIGN.md §3): users point
-- Grafana and their own queries at them. Never rename them, and never edit
-- this file once shipped: change the schema with a new migration.
--
-- Names are not schema-qualified: the table lands in the first schema of the
-- search_path, which is how tests give each run its own schema.

-- +goose Up
CREATE TABLE readings (
    station     text             NOT NULL,               -- source id
    sensor      text             NOT NULL,               -- sensor type
    ts          timestamptz      NOT NULL,               -- device time, never arrival time
    value       double precision NOT NULL,               -- in the canonical unit
    unit        text             NOT NULL,               -- SenML unit code (RFC 8428)
    received_at timestamptz      NOT NULL DEFAULT now(), -- arrival time
    -- The natural key: a re-sent reading is dropped by ON CONFLICT DO NOTHING.
    PRIMARY KEY (station, sensor, ts)
);

-- +goose Down
DROP TABLE readings;
