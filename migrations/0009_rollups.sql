-- Rollup maintenance (DESIGN.md §14, docs/rollups.md): the vector columns
-- wind directions need, and the invalidation log that says which rollups
-- must be recomputed. Package sinks/postgres/rollup owns the queries.
-- Never edit this file once shipped.
--
-- Every change to readings records the 5-minute buckets it touched in
-- rollup_invalidations, in the same transaction, by statement-level
-- triggers with transition tables (as TimescaleDB's invalidation log does):
-- they catch every writer, the sink, calibration, QC, derived readings and
-- retention alike. Statement-level triggers with transition tables are
-- allowed on a partitioned parent, so they keep working when readings is
-- partitioned; a migration that replaces the table must create the three
-- triggers again on the new one.

-- +goose Up

-- Vector mean of a direction (aggregation kind vector), kept as sums so
-- that hours and days add up their 5-minute buckets: vector_x and vector_y
-- sum w·sin θ and w·cos θ over the readings with a weight w (the
-- WeightedBy reading of the same station and time), vector_n counts them;
-- unit_x and unit_y sum sin θ and cos θ over all readings, the unweighted
-- mean of a bucket where no reading has a weight.
ALTER TABLE readings_5m
    ADD COLUMN vector_x double precision,
    ADD COLUMN vector_y double precision,
    ADD COLUMN vector_n bigint,
    ADD COLUMN unit_x   double precision,
    ADD COLUMN unit_y   double precision;
ALTER TABLE readings_1h
    ADD COLUMN vector_x double precision,
    ADD COLUMN vector_y double precision,
    ADD COLUMN vector_n bigint,
    ADD COLUMN unit_x   double precision,
    ADD COLUMN unit_y   double precision;
ALTER TABLE readings_1d
    ADD COLUMN vector_x double precision,
    ADD COLUMN vector_y double precision,
    ADD COLUMN vector_n bigint,
    ADD COLUMN unit_x   double precision,
    ADD COLUMN unit_y   double precision;

-- seq numbers every change: a worker deletes an invalidation only if its
-- seq is still the one it read before recomputing, so a change committed
-- meanwhile leaves the bucket pending.
CREATE SEQUENCE rollup_invalidation_seq;

-- One row per (station, sensor, 5-minute bucket) whose rollups are to be
-- recomputed, with its hour and station-local day.
CREATE TABLE rollup_invalidations (
    station        text        NOT NULL,
    sensor         text        NOT NULL,
    bucket         timestamptz NOT NULL, -- start of the 5-minute bucket, UTC-aligned
    seq            bigint      NOT NULL DEFAULT nextval('rollup_invalidation_seq'),
    -- When the bucket became pending: the start of the first transaction
    -- that changed it since it was last recomputed. The rollup lag is the
    -- age of the oldest.
    invalidated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station, sensor, bucket)
);
-- Workers take the oldest first. Changes update seq only, which no index
-- holds, so those updates stay HOT.
CREATE INDEX rollup_invalidations_age ON rollup_invalidations (invalidated_at);

-- Stations whose daily rollups are to be rebuilt because their zone, and
-- so their local days, changed (DESIGN.md §10).
CREATE TABLE rollup_day_rebuilds (
    station      text        PRIMARY KEY,
    seq          bigint      NOT NULL DEFAULT nextval('rollup_invalidation_seq'),
    requested_at timestamptz NOT NULL DEFAULT now()
);

-- The zone that stations without one of their own followed when their
-- daily rollups were last computed (SENSORHUB_TIMEZONE); a worker started
-- with another queues their days for a rebuild. One row at most.
CREATE TABLE rollup_settings (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    default_timezone text    NOT NULL
);

-- 5-minute buckets start at multiples of 5 minutes since the Unix epoch,
-- in UTC. Rows are upserted in key order, so that concurrent writers take
-- the row locks in one order. A reading flagged 4 (fail) counts in no
-- rollup, so storing or deleting one changes none; an update matters when
-- it changes the value, whether the flag is 4, or the key.
-- +goose StatementBegin
CREATE FUNCTION rollup_invalidate_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations (station, sensor, bucket)
    SELECT DISTINCT station, sensor, date_bin('5 minutes', ts, 'epoch')
    FROM new_rows WHERE qc_flag <> 4
    ORDER BY 1, 2, 3
    ON CONFLICT (station, sensor, bucket) DO UPDATE SET seq = EXCLUDED.seq;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION rollup_invalidate_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations (station, sensor, bucket)
    SELECT DISTINCT station, sensor, date_bin('5 minutes', ts, 'epoch')
    FROM old_rows WHERE qc_flag <> 4
    ORDER BY 1, 2, 3
    ON CONFLICT (station, sensor, bucket) DO UPDATE SET seq = EXCLUDED.seq;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION rollup_invalidate_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations (station, sensor, bucket)
    SELECT DISTINCT c.station, c.sensor, date_bin('5 minutes', c.ts, 'epoch')
    FROM old_rows o
    FULL JOIN new_rows n USING (station, sensor, ts)
    CROSS JOIN LATERAL (VALUES (o.station, o.sensor, o.ts), (n.station, n.sensor, n.ts)) AS c(station, sensor, ts)
    WHERE c.station IS NOT NULL
      AND (o.value IS DISTINCT FROM n.value OR (o.qc_flag = 4) IS DISTINCT FROM (n.qc_flag = 4))
    ORDER BY 1, 2, 3
    ON CONFLICT (station, sensor, bucket) DO UPDATE SET seq = EXCLUDED.seq;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- PostgreSQL allows transition tables only on triggers of one event each.
CREATE TRIGGER readings_rollup_insert AFTER INSERT ON readings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_invalidate_inserted();
CREATE TRIGGER readings_rollup_update AFTER UPDATE ON readings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_invalidate_updated();
CREATE TRIGGER readings_rollup_delete AFTER DELETE ON readings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_invalidate_deleted();

-- +goose StatementBegin
CREATE FUNCTION rollup_zone_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_day_rebuilds (station) VALUES (NEW.id)
    ON CONFLICT (station) DO UPDATE SET seq = EXCLUDED.seq;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER stations_rollup_zone AFTER UPDATE OF timezone ON stations
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION rollup_zone_changed();

-- Readings stored before this migration have no rollups yet: queue them.
INSERT INTO rollup_invalidations (station, sensor, bucket)
SELECT DISTINCT station, sensor, date_bin('5 minutes', ts, 'epoch')
FROM readings WHERE qc_flag <> 4;

-- +goose Down
DROP TRIGGER stations_rollup_zone ON stations;
DROP FUNCTION rollup_zone_changed();
DROP TRIGGER readings_rollup_delete ON readings;
DROP TRIGGER readings_rollup_update ON readings;
DROP TRIGGER readings_rollup_insert ON readings;
DROP FUNCTION rollup_invalidate_updated();
DROP FUNCTION rollup_invalidate_deleted();
DROP FUNCTION rollup_invalidate_inserted();
DROP TABLE rollup_settings;
DROP TABLE rollup_day_rebuilds;
DROP TABLE rollup_invalidations;
DROP SEQUENCE rollup_invalidation_seq;
ALTER TABLE readings_1d DROP COLUMN vector_x, DROP COLUMN vector_y, DROP COLUMN vector_n, DROP COLUMN unit_x, DROP COLUMN unit_y;
ALTER TABLE readings_1h DROP COLUMN vector_x, DROP COLUMN vector_y, DROP COLUMN vector_n, DROP COLUMN unit_x, DROP COLUMN unit_y;
ALTER TABLE readings_5m DROP COLUMN vector_x, DROP COLUMN vector_y, DROP COLUMN vector_n, DROP COLUMN unit_x, DROP COLUMN unit_y;
