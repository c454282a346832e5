-- Stations and calibrations (DESIGN.md §10 and §11). Table and column names
-- are a contract: never rename them, and never edit this file once shipped.

-- +goose Up
CREATE TABLE stations (
    id          text             PRIMARY KEY,            -- = readings.station
    name        text,
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    elevation_m double precision CHECK (elevation_m <> 'NaN'),
    timezone    text,                                    -- IANA name; null follows SENSORHUB_TIMEZONE
    created_at  timestamptz      NOT NULL DEFAULT now()
);

-- Stations are created on their first reading; those that already sent
-- readings exist from now on.
INSERT INTO stations (id) SELECT DISTINCT station FROM readings;

-- One row per calibration: a version of (station, sensor) valid in
-- [valid_from, valid_to). The periods of one (station, sensor) never
-- overlap; sensorhub checks that under the station's advisory lock (an
-- exclusion constraint would need the btree_gist extension).
CREATE TABLE calibrations (
    id           bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station      text             NOT NULL,
    sensor       text             NOT NULL,
    valid_from   timestamptz      NOT NULL DEFAULT '-infinity',
    valid_to     timestamptz,                            -- null: open
    scale        double precision NOT NULL DEFAULT 1 CHECK (scale <> 0 AND scale <> 'NaN' AND abs(scale) <> 'Infinity'),
    offset_value double precision NOT NULL DEFAULT 0 CHECK (offset_value <> 'NaN' AND abs(offset_value) <> 'Infinity'),
    note         text             NOT NULL DEFAULT '',
    created_at   timestamptz      NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX calibrations_station_sensor ON calibrations (station, sensor, valid_from);

-- The value before calibration, null where none applied.
ALTER TABLE readings ADD COLUMN raw_value double precision;

-- +goose Down
ALTER TABLE readings DROP COLUMN raw_value;
DROP TABLE calibrations;
DROP TABLE stations;
