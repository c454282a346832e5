-- Records where a correction, a flag change or a deletion happened, so
-- that the rollup worker recomputes a bucket whole only when it must.
-- Never edit this file once shipped.
--
-- changed_from becomes the earliest device time of every reading
-- inserted, updated or deleted in the bucket since the invalidation was
-- recorded; migration 0011 made it -infinity for any update or delete. A
-- bucket row counts exactly the readings up to its through as they were
-- when it was computed; a change after through touches none of them, and
-- the worker's append reads every reading after through as it is now. So
-- a correction, a flag to or from fail, a deletion or a derived value
-- rewritten after through leaves the bucket appendable, and only a change
-- at or before through makes it recomputed whole. Live, derived values (a
-- dew point re-paired, the rain rates after new rain) are rewritten a few
-- seconds after they were stored, and their buckets were recomputed whole
-- every pass. As in migration 0014, a pending invalidation is written only
-- when changed_from moves earlier.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations AS i (station, sensor, bucket, changed_from)
    SELECT station, sensor, date_bin('5 minutes', ts, 'epoch'), min(ts)
    FROM old_rows WHERE qc_flag <> 4
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
CREATE OR REPLACE FUNCTION rollup_invalidate_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations AS i (station, sensor, bucket, changed_from)
    SELECT c.station, c.sensor, date_bin('5 minutes', c.ts, 'epoch'), min(c.ts)
    FROM old_rows o
    FULL JOIN new_rows n USING (station, sensor, ts)
    CROSS JOIN LATERAL (VALUES (o.station, o.sensor, o.ts), (n.station, n.sensor, n.ts)) AS c(station, sensor, ts)
    WHERE c.station IS NOT NULL
      AND (o.value IS DISTINCT FROM n.value OR (o.qc_flag = 4) IS DISTINCT FROM (n.qc_flag = 4))
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (station, sensor, bucket) WHERE NOT claimed DO UPDATE
    SET changed_from = EXCLUDED.changed_from
    WHERE EXCLUDED.changed_from < i.changed_from;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
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
