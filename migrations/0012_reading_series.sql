-- The series of readings (docs/api.md#speed): one row per (station, sensor)
-- that has a reading, with the UTC month of its newest device time, so
-- that the read API finds a station's sensors without walking every
-- monthly partition of readings, and each sensor's newest reading with
-- one index probe into the partition of that month. Table and column
-- names are a contract: never rename them, and never edit this file once
-- shipped.
--
-- Statement-level triggers with transition tables keep it, in the
-- transaction that changes readings, as migration 0009's keep the rollup
-- invalidation log: every writer of readings (the sink, derived readings,
-- a bulk COPY into readings, an UPDATE of a key by hand) is caught, with
-- staleness, rollups and every processor on or off. A statement writes
-- to the table only for a series it creates or whose month it advances:
-- once a month per series. Rows are never deleted: a series whose
-- readings are all gone keeps its row and has no latest reading. Writes
-- straight into a partition of readings, which bypass the parent's
-- statement triggers, are not caught; sensorhub makes none but to move
-- rows between partitions.

-- +goose Up
CREATE TABLE reading_series (
    station      text        NOT NULL,
    sensor       text        NOT NULL,
    -- The start of the UTC month of the newest device time ever written
    -- to readings for the series: no reading of it is newer than that
    -- month, and its newest one is in that month unless deleted.
    latest_month timestamptz NOT NULL,
    PRIMARY KEY (station, sensor)
);

-- Only a series that is new, or gets a reading in a month after its
-- latest one, is written; the others cost one index probe per statement
-- (the lateral subquery with OFFSET 0 keeps it a probe: as an anti-join,
-- the planner hashed the whole table for every statement). The upsert
-- keeps the greatest month when concurrent writers race, and goes in key
-- order, as the sink writes, so that they lock in one order.
-- +goose StatementBegin
CREATE FUNCTION reading_series_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO reading_series AS s (station, sensor, latest_month)
    SELECT n.station, n.sensor, n.latest_month
    FROM (SELECT station, sensor, date_trunc('month', max(ts), 'UTC') AS latest_month
          FROM new_rows GROUP BY station, sensor) n
    LEFT JOIN LATERAL (SELECT k.latest_month FROM reading_series k
                       WHERE k.station = n.station AND k.sensor = n.sensor OFFSET 0) k ON true
    WHERE k.latest_month IS NULL OR k.latest_month < n.latest_month
    ORDER BY n.station, n.sensor
    ON CONFLICT (station, sensor) DO UPDATE SET latest_month = excluded.latest_month
    WHERE s.latest_month < excluded.latest_month;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- An UPDATE counts only for the rows whose key it changed (QC flags,
-- calibrations and derived values change none): a row that moved to
-- another series or month is a new reading there.
-- +goose StatementBegin
CREATE FUNCTION reading_series_updated() RETURNS trigger
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

-- Created before the backfill, in its transaction: CREATE TRIGGER locks
-- readings against writers until the migration commits, so no reading
-- slips between the backfill and the triggers.
CREATE TRIGGER readings_series_insert AFTER INSERT ON readings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reading_series_inserted();
CREATE TRIGGER readings_series_update AFTER UPDATE ON readings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reading_series_updated();

-- The series stored before this migration, found by a loose index scan of
-- readings' primary key (one probe per series and partition, however many
-- readings there are), each with the month of its newest reading.
WITH RECURSIVE series AS (
    (SELECT station, sensor FROM readings ORDER BY station, sensor LIMIT 1)
    UNION ALL
    SELECT n.station, n.sensor
    FROM series p
    CROSS JOIN LATERAL (
        SELECT r.station, r.sensor FROM readings r
        WHERE (r.station, r.sensor) > (p.station, p.sensor)
        ORDER BY r.station, r.sensor
        LIMIT 1
    ) n
)
INSERT INTO reading_series (station, sensor, latest_month)
SELECT s.station, s.sensor,
       date_trunc('month', (SELECT max(r.ts) FROM readings r WHERE r.station = s.station AND r.sensor = s.sensor), 'UTC')
FROM series s;

-- +goose Down
DROP TRIGGER readings_series_update ON readings;
DROP TRIGGER readings_series_insert ON readings;
DROP FUNCTION reading_series_updated();
DROP FUNCTION reading_series_inserted();
DROP TABLE reading_series;
