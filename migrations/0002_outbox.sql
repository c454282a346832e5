-- The transactional outbox (DESIGN.md §5): the Postgres sink inserts events in
-- the same transaction as the readings they describe; the forwarder moves them
-- to the Redis stream sensor_events. Never edit this file once shipped.
--
-- The tables are exactly what watermill-sql v4's DefaultPostgreSQLSchema and
-- DefaultPostgreSQLOffsetsAdapter create for the topic "sensorhub_outbox"
-- (package sinks/postgres/outbox, constant Topic): "watermill_" + topic and
-- "watermill_offsets_" + topic, with their columns and keys. The service runs
-- them with auto-initialisation off, so these names must stay in step with
-- that constant and with the adapters of the watermill-sql version in go.mod.

-- +goose Up
CREATE TABLE "watermill_sensorhub_outbox" (
    "offset"         BIGSERIAL,
    "uuid"           VARCHAR(36) NOT NULL,
    "created_at"     TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload"        JSON        DEFAULT NULL,
    "metadata"       JSON        DEFAULT NULL,
    "transaction_id" xid8        NOT NULL,
    PRIMARY KEY ("transaction_id", "offset")
);

CREATE TABLE "watermill_offsets_sensorhub_outbox" (
    consumer_group                VARCHAR(255) NOT NULL,
    offset_acked                  BIGINT,
    last_processed_transaction_id xid8         NOT NULL,
    PRIMARY KEY (consumer_group)
);

-- +goose Down
DROP TABLE "watermill_offsets_sensorhub_outbox";
DROP TABLE "watermill_sensorhub_outbox";
