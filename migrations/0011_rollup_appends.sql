-- Lets the rollup worker add the readings appended to a 5-minute bucket to
-- its row instead of reading the whole bucket again (docs/rollups.md). A
-- series that sends every few seconds appends to its open bucket between
-- every two passes of the worker, and a bucket of a reading every 1.3 s
-- holds 230 readings: recomputing it whole read a hundred rows a pass, on
-- average, to add two or three. Never edit this file once shipped.
--
-- readings_5m.through is the device time of the newest reading the row
-- counts (null: not known, as for rows computed before this migration).
-- rollup_invalidations.changed_from is the earliest device time of the
-- readings inserted into the bucket since the invalidation was recorded,
-- or -infinity once a reading of it was updated or deleted: when it is
-- after through, every change since the row was computed is a reading
-- inserted after through, and adding the readings after through to the row
-- gives what recomputing it whole would.
--
-- A worker first claims the invalidations it will work on (claimed, in a
-- transaction of its own that never waits for a writer), then recomputes
-- and deletes them: a change to a claimed bucket records a new pending
-- invalidation beside the claimed one instead of folding into it, so that
-- the next pass knows whether the changes it missed were appends. At most
-- one invalidation per bucket is pending (the partial unique index);
-- claimed ones of a worker that died are taken by the next pass.

-- +goose Up
ALTER TABLE readings_5m ADD COLUMN through timestamptz;
ALTER TABLE rollup_invalidations
    ADD COLUMN changed_from timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN claimed      boolean     NOT NULL DEFAULT false,
    DROP CONSTRAINT rollup_invalidations_pkey,
    ADD PRIMARY KEY (station, sensor, bucket, seq);
CREATE UNIQUE INDEX rollup_invalidations_pending ON rollup_invalidations (station, sensor, bucket) WHERE NOT claimed;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations AS i (station, sensor, bucket, changed_from)
    SELECT station, sensor, date_bin('5 minutes', ts, 'epoch'), min(ts)
    FROM new_rows WHERE qc_flag <> 4
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (station, sensor, bucket) WHERE NOT claimed DO UPDATE
    SET seq = EXCLUDED.seq, changed_from = least(i.changed_from, EXCLUDED.changed_from);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations AS i (station, sensor, bucket)
    SELECT DISTINCT station, sensor, date_bin('5 minutes', ts, 'epoch')
    FROM old_rows WHERE qc_flag <> 4
    ORDER BY 1, 2, 3
    ON CONFLICT (station, sensor, bucket) WHERE NOT claimed DO UPDATE
    SET seq = EXCLUDED.seq, changed_from = '-infinity';
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations AS i (station, sensor, bucket)
    SELECT DISTINCT c.station, c.sensor, date_bin('5 minutes', c.ts, 'epoch')
    FROM old_rows o
    FULL JOIN new_rows n USING (station, sensor, ts)
    CROSS JOIN LATERAL (VALUES (o.station, o.sensor, o.ts), (n.station, n.sensor, n.ts)) AS c(station, sensor, ts)
    WHERE c.station IS NOT NULL
      AND (o.value IS DISTINCT FROM n.value OR (o.qc_flag = 4) IS DISTINCT FROM (n.qc_flag = 4))
    ORDER BY 1, 2, 3
    ON CONFLICT (station, sensor, bucket) WHERE NOT claimed DO UPDATE
    SET seq = EXCLUDED.seq, changed_from = '-infinity';
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_inserted() RETURNS trigger
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
CREATE OR REPLACE FUNCTION rollup_invalidate_deleted() RETURNS trigger
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
CREATE OR REPLACE FUNCTION rollup_invalidate_updated() RETURNS trigger
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

-- One invalidation per bucket again: the newest of a claimed and a pending one.
DELETE FROM rollup_invalidations a USING rollup_invalidations b
WHERE (a.station, a.sensor, a.bucket) = (b.station, b.sensor, b.bucket) AND a.seq < b.seq;
DROP INDEX rollup_invalidations_pending;
ALTER TABLE rollup_invalidations
    DROP CONSTRAINT rollup_invalidations_pkey,
    ADD PRIMARY KEY (station, sensor, bucket),
    DROP COLUMN claimed,
    DROP COLUMN changed_from;
ALTER TABLE readings_5m DROP COLUMN through;
