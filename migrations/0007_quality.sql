-- Quality control settings and manual flags (DESIGN.md §12), managed with
-- `sensorhub qc set|list|flag` and read by the qc processor
-- (sinks/postgres/qc). Table and column names are a contract: never rename
-- them, and never edit this file once shipped.

-- +goose Up

-- Overrides of a sensor type's declared limits (sensorhub.QC), for one
-- station or, with station '', for every station; a station's row wins
-- over the all-stations row, column by column, and a null column keeps the
-- next one down (the type's declaration). 0 turns a test off.
CREATE TABLE qc_settings (
    station             text             NOT NULL DEFAULT '', -- '' = every station
    sensor              text             NOT NULL,
    climatology_min     double precision,                      -- with climatology_max: the plausible range, every month
    climatology_max     double precision,
    spike               double precision CHECK (spike >= 0 AND spike <> 'Infinity'),
    rate_of_change      double precision CHECK (rate_of_change >= 0 AND rate_of_change <> 'Infinity'), -- per minute
    flat_line_count     integer          CHECK (flat_line_count >= 0),
    flat_line_period    interval         CHECK (flat_line_period >= '0'),
    flat_line_tolerance double precision CHECK (flat_line_tolerance >= 0 AND flat_line_tolerance <> 'Infinity'),
    max_gap             interval         CHECK (max_gap > '0'),
    updated_at          timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (station, sensor),
    CHECK ((climatology_min IS NULL) = (climatology_max IS NULL) AND climatology_min <= climatology_max)
);

-- Periods flagged by hand, [valid_from, valid_to): every reading of the
-- series in the period, stored or to come, gets the flag with the test
-- manual.
CREATE TABLE qc_manual_flags (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station    text        NOT NULL,
    sensor     text        NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz NOT NULL CHECK (valid_to > valid_from),
    flag       smallint    NOT NULL CHECK (flag IN (3, 4)),
    note       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qc_manual_flags_series ON qc_manual_flags (station, sensor, valid_from);

-- +goose Down
DROP TABLE qc_manual_flags;
DROP TABLE qc_settings;
