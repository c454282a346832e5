-- Quality flags, derived readings (DESIGN.md §12, §13) and the rollup tables
-- (§14). Table and column names are a contract: never rename them, and never
-- edit this file once shipped. The packages that fill them own the queries:
-- sinks/postgres/qc (flags), sinks/postgres/derived (derived readings) and
-- sinks/postgres/rollup (rollups); settings of their own come in later
-- migrations.

-- +goose Up
-- QARTOD codes: 1 pass, 2 not evaluated, 3 suspect, 4 fail. Readings are
-- stored as not evaluated; quality control sets the flag once it has seen
-- the reading's neighbours.
ALTER TABLE readings
    ADD COLUMN qc_flag  smallint NOT NULL DEFAULT 2 CHECK (qc_flag BETWEEN 1 AND 4),
    -- The tests that flagged the reading: climatology, spike,
    -- rate_of_change, flat_line, manual. Empty when it passed or was not
    -- evaluated.
    ADD COLUMN qc_tests text[]   NOT NULL DEFAULT '{}',
    -- True for a value sensorhub computed (dew point, …), false for one a
    -- device sent.
    ADD COLUMN derived  boolean  NOT NULL DEFAULT false;

-- One row per (station, sensor, bucket): 5-minute and hourly buckets start
-- on UTC boundaries, daily ones at the station-local midnight. Which
-- columns a row fills depends on how its sensor type aggregates (instant:
-- count, avg, min, max with their times; amount: sum; last: last, last_ts).
-- coverage is count ÷ the readings expected in the bucket from the series'
-- expected interval (null when none is known).
CREATE TABLE readings_5m (
    station    text             NOT NULL,
    sensor     text             NOT NULL,
    bucket     timestamptz      NOT NULL,
    count      bigint           NOT NULL,
    avg        double precision,
    min        double precision,
    max        double precision,
    sum        double precision,
    min_ts     timestamptz,
    max_ts     timestamptz,
    last       double precision,
    last_ts    timestamptz,
    coverage   double precision,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (station, sensor, bucket)
);
CREATE TABLE readings_1h (LIKE readings_5m INCLUDING ALL);
CREATE TABLE readings_1d (LIKE readings_5m INCLUDING ALL);

-- +goose Down
DROP TABLE readings_1d;
DROP TABLE readings_1h;
DROP TABLE readings_5m;
ALTER TABLE readings DROP COLUMN derived, DROP COLUMN qc_tests, DROP COLUMN qc_flag;
