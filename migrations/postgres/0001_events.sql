-- The event log. Readers only see rows whose tx_id is below the oldest transaction still
-- running (pg_snapshot_xmin), and read in (tx_id, global_position) order, so a slow
-- append can never be overtaken and skipped. No table lock, no counter row, no NOTIFY.
--
-- Appends are one INSERT ... SELECT (see store/src/postgres.rs): the expected version is
-- checked against max(stream_version) and UNIQUE (stream_id, stream_version) is the guard
-- that makes two racing writers of one stream produce exactly one winner.
CREATE TABLE events (
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    category        text        NOT NULL GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- The delivery order doubles as the primary key: one index fewer on the write path.
    PRIMARY KEY (tx_id, global_position),
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_by_category ON events (category, tx_id, global_position);
