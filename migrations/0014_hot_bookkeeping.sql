-- Keeps the two bookkeeping tables every commit writes small and their
-- updates HOT (heap-only: no index entry written, dead versions pruned as
-- the page is read, without waiting for VACUUM). Never edit this file once
-- shipped.
--
-- Live at 10,000 readings/s from 1,000 stations, every commit rewrites a
-- row of processor_cursors per processor and series, and one of
-- rollup_invalidations per series. Pages packed full leave no room for the
-- new version beside the old one, so two thirds of the cursor updates and
-- all the invalidation upserts went to other pages with new index entries:
-- in 20 s the 14,000 cursors left 157,000 dead versions and the 600
-- pending invalidations 183,000, which every lookup by key then stepped
-- over (the invalidation upsert cost 63 µs a row). Half-empty pages keep a
-- row's versions together.
--
-- Since migration 0011 seq is in rollup_invalidations' primary key, and the
-- triggers' "SET seq = EXCLUDED.seq" made every upsert of a pending
-- invalidation write index entries; the worker tells claimed invalidations
-- apart by their own seqs, so a pending one needs no new seq. An upsert now
-- writes only when it moves changed_from earlier: an append to a bucket
-- that is pending already (the common case: a series sends again before
-- the worker's next pass) changes nothing and writes nothing.

-- +goose Up
ALTER TABLE processor_cursors SET (fillfactor = 50);
ALTER TABLE rollup_invalidations SET (fillfactor = 50);

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
    SET changed_from = EXCLUDED.changed_from
    WHERE EXCLUDED.changed_from < i.changed_from;
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
    SET changed_from = '-infinity'
    WHERE i.changed_from <> '-infinity';
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
    SET changed_from = '-infinity'
    WHERE i.changed_from <> '-infinity';
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
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

ALTER TABLE rollup_invalidations RESET (fillfactor);
ALTER TABLE processor_cursors RESET (fillfactor);
