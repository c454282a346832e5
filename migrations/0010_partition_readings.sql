-- Partitions the table readings by device time (docs/growth.md): native
-- declarative partitioning, RANGE (ts), one partition per UTC month created
-- by package sinks/postgres/partition (on demand before a write, and ahead
-- of time by its maintainer), and a DEFAULT partition readings_default that
-- holds any reading whose month has no partition yet, so that a valid
-- reading is never refused for a missing partition. The natural key
-- (station, sensor, ts) stays the primary key: it includes the partition
-- key, so each partition enforces it and ON CONFLICT works as before.
-- Never edit this file once shipped.
--
-- An existing table is not copied: it becomes the partition
-- readings_legacy for every time before the first month it cannot hold
-- (the UTC month after both now and its newest reading), so the migration
-- costs one scan of it (ATTACH checks the range) under the migration's
-- lock, whatever its size. An empty one (a fresh install) is dropped
-- instead. Everything that belonged to the old table follows the new
-- parent, generically, whatever earlier migrations added: columns,
-- defaults, CHECK constraints (by name, as ATTACH needs), indexes under
-- their names, triggers (statement-level ones with transition tables
-- included), views (redefined over the new table), comments and grants.
-- A foreign key or materialized view that refers to readings, or a row
-- security policy on it, stops the migration with an error naming it:
-- those cannot follow automatically.

-- +goose Up
-- +goose StatementBegin
DO $migration$
DECLARE
    old       oid := 'readings'::regclass;
    r         record;
    indexes   text[] := '{}';
    triggers  text[] := '{}';
    views     text[] := '{}';
    stmt      text;
    upper     timestamptz;
BEGIN
    -- What cannot follow the table: refuse it, naming it.
    FOR r IN SELECT conname, conrelid::regclass AS tbl FROM pg_constraint WHERE confrelid = old AND contype = 'f' LOOP
        RAISE EXCEPTION 'readings: foreign key % of table % refers to readings; drop it before this migration and recreate it after', r.conname, r.tbl;
    END LOOP;
    FOR r IN SELECT DISTINCT v.oid::regclass AS view FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class
             WHERE d.refobjid = old AND v.relkind = 'm' LOOP
        RAISE EXCEPTION 'readings: materialized view % reads readings; drop it before this migration and recreate it after', r.view;
    END LOOP;
    IF EXISTS (SELECT FROM pg_policy WHERE polrelid = old) THEN
        RAISE EXCEPTION 'readings: row security policies on readings; drop them before this migration and recreate them after';
    END IF;

    -- Definitions, taken while they still name readings.
    SELECT coalesce(array_agg(CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                                   ELSE format('ALTER TABLE readings ADD CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)) END
                              ORDER BY i.indexrelid), '{}')
      INTO indexes
      FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = old
     WHERE i.indrelid = old;
    SELECT coalesce(array_agg(pg_get_triggerdef(t.oid) ORDER BY t.tgname), '{}') INTO triggers
      FROM pg_trigger t WHERE t.tgrelid = old AND NOT t.tgisinternal;
    SELECT coalesce(array_agg(format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid)) ORDER BY v.oid), '{}') INTO views
      FROM (SELECT DISTINCT w.ev_class AS oid FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
             WHERE d.refobjid = old AND w.ev_class <> old) v;

    -- The old table steps aside under a new name, its triggers dropped
    -- (they move to the parent) and its indexes renamed (their names move
    -- to the parent's; ATTACH pairs them by definition, not by name).
    FOR r IN SELECT tgname FROM pg_trigger WHERE tgrelid = old AND NOT tgisinternal LOOP
        EXECUTE format('DROP TRIGGER %I ON readings', r.tgname);
    END LOOP;
    FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = old LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, left('legacy_' || r.relname, 63));
    END LOOP;
    ALTER TABLE readings RENAME TO readings_legacy;

    -- The parent: the same columns, defaults, CHECK constraints (same
    -- names) and storage, partitioned by device time.
    CREATE TABLE readings (LIKE readings_legacy INCLUDING COMMENTS INCLUDING CONSTRAINTS INCLUDING DEFAULTS
                           INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STATISTICS INCLUDING STORAGE)
        PARTITION BY RANGE (ts);
    FOREACH stmt IN ARRAY indexes LOOP
        -- pg_get_indexdef qualifies the table: aim it at the new parent.
        EXECUTE regexp_replace(stmt, ' ON (ONLY )?\S+ USING ', ' ON readings USING ');
    END LOOP;
    FOREACH stmt IN ARRAY triggers LOOP
        EXECUTE regexp_replace(stmt, ' ON \S+ ', ' ON readings ');
    END LOOP;
    FOREACH stmt IN ARRAY views LOOP
        EXECUTE stmt;
    END LOOP;
    EXECUTE format('COMMENT ON TABLE readings IS %L', obj_description(old, 'pg_class'));
    FOR r IN SELECT a.privilege_type, a.is_grantable, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END AS grantee
               FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee
              WHERE c.oid = old AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON readings TO %s%s', r.privilege_type, r.grantee, CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;

    -- Where a reading without a partition of its own goes, until the
    -- partition exists (package partition moves it there).
    CREATE TABLE readings_default PARTITION OF readings DEFAULT;

    IF EXISTS (SELECT FROM readings_legacy) THEN
        SELECT (date_trunc('month', greatest(now(), max(ts)) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
          INTO upper FROM readings_legacy;
        EXECUTE format('ALTER TABLE readings ATTACH PARTITION readings_legacy FOR VALUES FROM (MINVALUE) TO (%L)', upper);
    ELSE
        DROP TABLE readings_legacy;
    END IF;
END
$migration$;
-- +goose StatementEnd

-- +goose Down
-- Back to one plain table holding every row, under the old table's
-- indexes, triggers, views and grants, the same way round.
-- +goose StatementBegin
DO $migration$
DECLARE
    parent    oid := 'readings'::regclass;
    r         record;
    indexes   text[] := '{}';
    triggers  text[] := '{}';
    views     text[] := '{}';
    stmt      text;
BEGIN
    SELECT coalesce(array_agg(CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                                   ELSE format('ALTER TABLE readings ADD CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)) END
                              ORDER BY i.indexrelid), '{}')
      INTO indexes
      FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = parent
     WHERE i.indrelid = parent;
    SELECT coalesce(array_agg(pg_get_triggerdef(t.oid) ORDER BY t.tgname), '{}') INTO triggers
      FROM pg_trigger t WHERE t.tgrelid = parent AND NOT t.tgisinternal AND t.tgparentid = 0;
    SELECT coalesce(array_agg(format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid)) ORDER BY v.oid), '{}') INTO views
      FROM (SELECT DISTINCT w.ev_class AS oid FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
             WHERE d.refobjid = parent AND w.ev_class <> parent) v;

    ALTER TABLE readings RENAME TO readings_partitioned;
    FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = parent LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, left('partitioned_' || r.relname, 63));
    END LOOP;
    CREATE TABLE readings (LIKE readings_partitioned INCLUDING COMMENTS INCLUDING CONSTRAINTS INCLUDING DEFAULTS
                           INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STATISTICS INCLUDING STORAGE);
    INSERT INTO readings SELECT * FROM readings_partitioned;
    FOREACH stmt IN ARRAY indexes LOOP
        EXECUTE regexp_replace(stmt, ' ON (ONLY )?\S+ USING ', ' ON readings USING ');
    END LOOP;
    FOREACH stmt IN ARRAY triggers LOOP
        EXECUTE regexp_replace(stmt, ' ON \S+ ', ' ON readings ');
    END LOOP;
    FOREACH stmt IN ARRAY views LOOP
        EXECUTE stmt;
    END LOOP;
    EXECUTE format('COMMENT ON TABLE readings IS %L', obj_description(parent, 'pg_class'));
    FOR r IN SELECT a.privilege_type, a.is_grantable, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END AS grantee
               FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee
              WHERE c.oid = parent AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON readings TO %s%s', r.privilege_type, r.grantee, CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    DROP TABLE readings_partitioned;
END
$migration$;
-- +goose StatementEnd
