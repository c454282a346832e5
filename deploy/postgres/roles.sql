-- Least-privilege PostgreSQL roles for sensorhub (optional; the default
-- layout runs everything as the superuser `service`).
--
-- Two roles instead of one superuser:
--
--   sensorhub_migrator  owns the schema `sensorhub` and every table in it.
--                       Used only by `sensorhub migrate up` (the migrate
--                       service). It can create, alter and drop tables in
--                       that schema, and nothing else: no superuser, no
--                       CREATEROLE, no other schema, no other database.
--   sensorhub_api       the read API's role (SENSORHUB_API_DATABASE_URL):
--                       SELECT on the tables the API reads, nothing else.
--                       The API answers requests from the network; with
--                       this role, a bug in it can read stored data, never
--                       change it.
--   sensorhub_app       used by `sensorhub run`. USAGE on the schema, SELECT
--                       and INSERT on readings (INSERT ... ON CONFLICT DO
--                       NOTHING needs no more), nothing else. It cannot
--                       UPDATE or DELETE a reading, nor create, alter or drop
--                       a table: a compromised or broken service can add
--                       readings, never rewrite stored ones or the schema.
--
-- Both have search_path = sensorhub in this database, so the migrations'
-- unqualified names (readings, goose_db_version) resolve to the schema.
-- Other clients (Grafana) read sensorhub.readings, or set their own
-- search_path; give them a read-only role of their own (example at the end).
--
-- No password is in this file. Set them with psql's \password, which sends
-- only a hash (the plain text never reaches the server's logs):
--
--   docker exec -it postgres-prod psql -U service -d sensorhub -c '\password sensorhub_migrator'
--   docker exec -it postgres-prod psql -U service -d sensorhub -c '\password sensorhub_app'
--   docker exec -it postgres-prod psql -U service -d sensorhub -c '\password sensorhub_api'
--
-- Run it as the superuser, connected to sensorhub's database, before the
-- first migration and again after every migration (it is idempotent, and it
-- resets sensorhub_app's table privileges to exactly what is granted below):
--
--   docker exec -i postgres-prod psql -U service -d sensorhub -v ON_ERROR_STOP=1 < deploy/postgres/roles.sql
--
-- A migration that adds a table sensorhub_app must use adds its GRANT at
-- the end of this file, in the same change.
--
-- Coming from a database migrated as `service` (tables in schema public):
-- move them once, as the superuser, before running this file again:
--   ALTER TABLE public.readings SET SCHEMA sensorhub;
--   ALTER TABLE public.goose_db_version SET SCHEMA sensorhub;
-- and point Grafana's queries at sensorhub.readings.

\set ON_ERROR_STOP on

-- The roles, without passwords (set with \password above) ---------------
SELECT 'CREATE ROLE sensorhub_migrator LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_migrator') \gexec
SELECT 'CREATE ROLE sensorhub_app LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_app') \gexec
SELECT 'CREATE ROLE sensorhub_api LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensorhub_api') \gexec

-- Also for roles that existed before: neither may do more than log in.
ALTER ROLE sensorhub_migrator NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE sensorhub_app NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE sensorhub_api NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
-- A read that runs away is cut off (the API's own timeout is 5 s).
ALTER ROLE sensorhub_api SET statement_timeout = '30s';
ALTER ROLE sensorhub_api SET default_transaction_read_only = on;
-- A stuck query or a leaked connection cannot hold locks forever.
ALTER ROLE sensorhub_app SET idle_in_transaction_session_timeout = '5min';

-- The database (the current one, so the file works whatever DB_NAME is) ----
-- Explicit, so that both can still connect after an administrator revokes
-- PUBLIC's CONNECT (REVOKE ALL ON DATABASE sensorhub FROM PUBLIC, which this
-- file does not do: other roles, e.g. Grafana's, may rely on it).
SELECT format('GRANT CONNECT ON DATABASE %I TO sensorhub_migrator, sensorhub_app, sensorhub_api', current_database()) \gexec
-- PostgreSQL 15 and later no longer let everybody create in public;
-- databases created by an older version still do.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The schema, owned by the migrator -------------------------------------
CREATE SCHEMA IF NOT EXISTS sensorhub AUTHORIZATION sensorhub_migrator;
ALTER SCHEMA sensorhub OWNER TO sensorhub_migrator;
REVOKE ALL ON SCHEMA sensorhub FROM PUBLIC;
GRANT USAGE ON SCHEMA sensorhub TO sensorhub_app, sensorhub_api;

SELECT format('ALTER ROLE sensorhub_migrator IN DATABASE %I SET search_path = sensorhub', current_database()) \gexec
SELECT format('ALTER ROLE sensorhub_app IN DATABASE %I SET search_path = sensorhub', current_database()) \gexec
SELECT format('ALTER ROLE sensorhub_api IN DATABASE %I SET search_path = sensorhub', current_database()) \gexec

-- Tables the migrator may already have created in the schema are its own
-- (e.g. after the move from public above).
SELECT format('ALTER TABLE sensorhub.%I OWNER TO sensorhub_migrator', tablename)
FROM pg_tables
WHERE schemaname = 'sensorhub' AND tableowner <> 'sensorhub_migrator' \gexec

-- The runtime role's table privileges: exactly these, nothing else --------
REVOKE ALL ON ALL TABLES IN SCHEMA sensorhub FROM sensorhub_app, sensorhub_api;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA sensorhub FROM sensorhub_app, sensorhub_api;

-- readings exists after the first `migrate up`; run this file again then.
SELECT 'GRANT SELECT, INSERT ON sensorhub.readings TO sensorhub_app'
WHERE to_regclass('sensorhub.readings') IS NOT NULL \gexec
-- Migration 0003: the service creates a station on its first reading,
-- reads the stations' zones and applies calibrations. Changing stations
-- and calibrations (sensorhub station set, calibration add|end) updates
-- stored readings: run those commands as sensorhub_migrator, which owns
-- the tables.
SELECT 'GRANT SELECT, INSERT ON sensorhub.stations TO sensorhub_app'
WHERE to_regclass('sensorhub.stations') IS NOT NULL \gexec
SELECT 'GRANT SELECT ON sensorhub.calibrations TO sensorhub_app'
WHERE to_regclass('sensorhub.calibrations') IS NOT NULL \gexec

-- Stateful processing (migration 0004): processors' cursors and state are
-- inserted and updated by every commit; threshold rules are read, and
-- inserted when SENSORHUB_THRESHOLDS seeds them at start-up (`sensorhub rule
-- add|remove` is for an operator's role, or the migrator).
SELECT 'GRANT SELECT, INSERT, UPDATE ON sensorhub.processor_cursors TO sensorhub_app'
WHERE to_regclass('sensorhub.processor_cursors') IS NOT NULL \gexec
SELECT 'GRANT SELECT, INSERT ON sensorhub.threshold_rules TO sensorhub_app'
WHERE to_regclass('sensorhub.threshold_rules') IS NOT NULL \gexec

-- sensor_status (migration 0005): the sink records arrivals in it, the
-- staleness sweeper flips series stale; neither deletes a row.
SELECT 'GRANT SELECT, INSERT, UPDATE ON sensorhub.sensor_status TO sensorhub_app'
WHERE to_regclass('sensorhub.sensor_status') IS NOT NULL \gexec

-- Rollups (migration 0009): every change to readings records the buckets it
-- touched in rollup_invalidations, by trigger, as the role making the
-- change; the rollup worker recomputes the rollup tables from readings and
-- deletes the invalidations it did.
SELECT 'GRANT SELECT, INSERT, UPDATE, DELETE ON sensorhub.rollup_invalidations, sensorhub.rollup_day_rebuilds, '
       'sensorhub.rollup_settings, sensorhub.readings_5m, sensorhub.readings_1h, sensorhub.readings_1d TO sensorhub_app'
WHERE to_regclass('sensorhub.rollup_invalidations') IS NOT NULL \gexec
SELECT 'GRANT USAGE ON SEQUENCE sensorhub.rollup_invalidation_seq TO sensorhub_app'
WHERE to_regclass('sensorhub.rollup_invalidation_seq') IS NOT NULL \gexec
-- The series of readings (migration 0012): every new series, and every
-- month a series first gets a reading in, is recorded in reading_series
-- by trigger, as the role writing the readings.
SELECT 'GRANT SELECT, INSERT, UPDATE ON sensorhub.reading_series TO sensorhub_app'
WHERE to_regclass('sensorhub.reading_series') IS NOT NULL \gexec
-- Derived quantities (migration 0013): the rain rate's running totals are
-- written, and dropped, with the rates, by every commit that changes rain.
SELECT 'GRANT SELECT, INSERT, UPDATE, DELETE ON sensorhub.rain_rate_totals TO sensorhub_app'
WHERE to_regclass('sensorhub.rain_rate_totals') IS NOT NULL \gexec
-- The read API (SENSORHUB_API_DATABASE_URL, docs/api.md): SELECT only, on
-- the tables it reads. The test TestReadOnlyRole grants the same.
SELECT format('GRANT SELECT ON sensorhub.%I TO sensorhub_api', t)
FROM unnest(ARRAY['readings', 'stations', 'sensor_status', 'reading_series', 'readings_5m', 'readings_1h', 'readings_1d']) AS t
WHERE to_regclass('sensorhub.' || t) IS NOT NULL \gexec

-- Example, not run: a read-only role for Grafana.
--   CREATE ROLE grafana LOGIN;  -- then \password grafana
--   GRANT CONNECT ON DATABASE sensorhub TO grafana;
--   GRANT USAGE ON SCHEMA sensorhub TO grafana;
--   GRANT SELECT ON sensorhub.readings TO grafana;
--   ALTER ROLE grafana IN DATABASE sensorhub SET search_path = sensorhub;
