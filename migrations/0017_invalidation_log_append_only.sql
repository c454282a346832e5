-- Makes the invalidation log append-only: a change to readings adds a row
-- per (station, sensor, 5-minute bucket) it touched, and never updates or
-- locks one. Never edit this file once shipped.
--
-- Since migration 0011 a bucket had at most one pending invalidation,
-- which every change upserted, and a worker first marked the ones it took
-- as claimed, in a transaction of its own, so that a change committed
-- during its recomputation recorded a new pending one. Live at 10,000
-- readings/s from 1,000 stations the worker claims about every pending
-- invalidation once a second, so most commits found none to fold into:
-- each wrote a fresh row with entries in three indexes, and waited for
-- the claim's row locks; each claim rewrote its rows outside HOT
-- (claimed is in the pending index's predicate). In a 20 s run the
-- triggers took 8.4 s of PostgreSQL's time and the claims 4.8 s.
--
-- Now a pass of the worker deletes the invalidations of the buckets it
-- recomputes in the transaction that recomputes them (rollup.Worker):
-- rows of a change committed after that DELETE began are not visible to
-- it and stay for the next pass, as the claimed flag arranged; a writer
-- never waits for the worker, nor the worker for a writer, since neither
-- changes a row the other may hold. A bucket may now have several
-- invalidations; the worker takes them all and uses the earliest
-- changed_from. A replica of an older release still running beside a
-- newer one fails its rollup passes (no claimed column) and logs why;
-- the newer replicas do the work.

-- +goose Up
DROP INDEX rollup_invalidations_pending;
ALTER TABLE rollup_invalidations DROP COLUMN claimed, RESET (fillfactor);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations (station, sensor, bucket, changed_from)
    SELECT station, sensor, date_bin('5 minutes', ts, 'epoch'), min(ts)
    FROM new_rows WHERE qc_flag <> 4
    GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations (station, sensor, bucket, changed_from)
    SELECT station, sensor, date_bin('5 minutes', ts, 'epoch'), min(ts)
    FROM old_rows WHERE qc_flag <> 4
    GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_invalidate_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO rollup_invalidations (station, sensor, bucket, changed_from)
    SELECT c.station, c.sensor, date_bin('5 minutes', c.ts, 'epoch'), min(c.ts)
    FROM old_rows o
    FULL JOIN new_rows n USING (station, sensor, ts)
    CROSS JOIN LATERAL (VALUES (o.station, o.sensor, o.ts), (n.station, n.sensor, n.ts)) AS c(station, sensor, ts)
    WHERE c.station IS NOT NULL
      AND (o.value IS DISTINCT FROM n.value OR (o.qc_flag = 4) IS DISTINCT FROM (n.qc_flag = 4))
    GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- One pending invalidation per bucket again: the newest row of each, with
-- the earliest changed_from of them all.
UPDATE rollup_invalidations i SET changed_from = f.changed_from
FROM (SELECT station, sensor, bucket, max(seq) AS seq, min(changed_from) AS changed_from
      FROM rollup_invalidations GROUP BY 1, 2, 3) f
WHERE (i.station, i.sensor, i.bucket, i.seq) = (f.station, f.sensor, f.bucket, f.seq);
DELETE FROM rollup_invalidations i USING rollup_invalidations n
WHERE (n.station, n.sensor, n.bucket) = (i.station, i.sensor, i.bucket) AND n.seq > i.seq;
ALTER TABLE rollup_invalidations ADD COLUMN claimed boolean NOT NULL DEFAULT false, SET (fillfactor = 50);
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
