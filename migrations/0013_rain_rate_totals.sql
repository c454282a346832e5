-- The rain rate's running totals (docs/derived.md): per station, the exact
-- sum of its rain in the rain-rate window ending at ts, from which the
-- derived processor computes the rates of the station's next rain readings
-- without reading the window again. Written in the transactions that write
-- the rates, under the station's lock; package sinks/postgres/derived owns
-- the queries. A row may be deleted at any time: the processor then sums
-- the window once more. Never edit this file once shipped.

-- +goose Up
CREATE TABLE rain_rate_totals (
    station     text        PRIMARY KEY,
    ts          timestamptz NOT NULL, -- the end of the window
    window_size interval    NOT NULL, -- derived.Config.RainRateWindow when it was summed
    -- sum(value::numeric) of the station's rain readings not flagged fail
    -- in (ts - window_size, ts]; never NaN or infinite
    total       numeric     NOT NULL
);

-- +goose Down
DROP TABLE rain_rate_totals;
