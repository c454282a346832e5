-- Keeps the reading_series trigger of an UPDATE linear in the rows it
-- changed. Never edit this file once shipped.
--
-- Migration 0012 found the keys an UPDATE moved with NOT EXISTS between
-- its transition tables. PL/pgSQL caches the statement's plan per session:
-- planned first for an UPDATE of a row or two (a calibration, a flag by
-- hand), it stayed a nested-loop anti-join, which compares every new row
-- with every old one. QC flags a commit's released readings in one UPDATE
-- of hundreds to thousands of rows: 2,000 rows took 277 ms in that plan,
-- 0.2 ms hashed, and in a 300,000-reading drain with QC the trigger took
-- 1.7 s of PostgreSQL's time for statements that change no key. A set
-- difference (EXCEPT) has no nested-loop plan: it hashes or sorts.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION reading_series_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO reading_series AS s (station, sensor, latest_month)
    SELECT m.station, m.sensor, date_trunc('month', max(m.ts), 'UTC')
    FROM (SELECT station, sensor, ts FROM new_rows
          EXCEPT
          SELECT station, sensor, ts FROM old_rows) m
    GROUP BY m.station, m.sensor
    ORDER BY m.station, m.sensor
    ON CONFLICT (station, sensor) DO UPDATE SET latest_month = excluded.latest_month
    WHERE s.latest_month < excluded.latest_month;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION reading_series_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO reading_series AS s (station, sensor, latest_month)
    SELECT n.station, n.sensor, date_trunc('month', max(n.ts), 'UTC')
    FROM new_rows n
    WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.station = n.station AND o.sensor = n.sensor AND o.ts = n.ts)
    GROUP BY n.station, n.sensor
    ORDER BY n.station, n.sensor
    ON CONFLICT (station, sensor) DO UPDATE SET latest_month = excluded.latest_month
    WHERE s.latest_month < excluded.latest_month;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
