-- The event log. Readers only see rows whose tx_id is below the oldest transaction still
-- running (pg_snapshot_xmin), and read in (tx_id, global_position) order, so a slow
-- append can never be overtaken and skipped. No table lock, no counter row.
CREATE TABLE streams (
    stream_id text   PRIMARY KEY,
    version   bigint NOT NULL
);

CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    category        text        NOT NULL GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_by_tx ON events (tx_id, global_position);
CREATE INDEX events_by_category ON events (category, tx_id, global_position);
CREATE INDEX events_by_type ON events (event_type, tx_id, global_position);

-- One round trip per append. Returns the versions and the position of the last event.
-- Raises LC409 (wrong expected version, DETAIL = actual version or '') and LC411
-- (some event ids are already stored: the caller re-reads them to tell a retry from a
-- conflict). A retry racing its first attempt surfaces as a unique violation on
-- events_event_id_key (or as LC409); the caller treats both the same way.
-- expected_kind: 0 any, 1 no stream, 2 stream exists, 3 exact (expected_version).
CREATE FUNCTION livechat_append(
    p_stream text, p_kind int, p_expected bigint,
    p_ids uuid[], p_types text[], p_schemas int[], p_data jsonb[], p_meta jsonb[], p_times timestamptz[]
) RETURNS TABLE (first_version bigint, last_version bigint, tx text, pos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := cardinality(p_ids);
    new_version bigint;
    actual bigint;
    found_count bigint;
BEGIN
    SELECT count(*) INTO found_count FROM events WHERE event_id = ANY (p_ids);
    IF found_count > 0 THEN
        -- A retry: the caller decides whether it is the same place (see idempotent_result).
        RAISE EXCEPTION USING ERRCODE = 'LC411', MESSAGE = 'event ids already stored';
    END IF;

    IF p_kind = 0 THEN
        INSERT INTO streams AS s (stream_id, version) VALUES (p_stream, n - 1)
        ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n
        RETURNING s.version INTO new_version;
    ELSIF p_kind = 1 THEN
        INSERT INTO streams (stream_id, version) VALUES (p_stream, n - 1)
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING version INTO new_version;
    ELSIF p_kind = 2 THEN
        UPDATE streams SET version = version + n WHERE stream_id = p_stream
        RETURNING version INTO new_version;
    ELSE
        UPDATE streams SET version = version + n WHERE stream_id = p_stream AND version = p_expected
        RETURNING version INTO new_version;
    END IF;

    IF new_version IS NULL THEN
        SELECT version INTO actual FROM streams WHERE stream_id = p_stream;
        RAISE EXCEPTION USING ERRCODE = 'LC409', MESSAGE = 'wrong expected version',
            DETAIL = coalesce(actual::text, '');
    END IF;

    RETURN QUERY
    WITH inserted AS (
        INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at)
        SELECT u.id, p_stream, new_version - n + u.ord, u.typ, u.sch, u.dat, u.met, u.tim
        FROM unnest(p_ids, p_types, p_schemas, p_data, p_meta, p_times) WITH ORDINALITY
             AS u (id, typ, sch, dat, met, tim, ord)
        ORDER BY u.ord
        RETURNING events.stream_version AS v, events.tx_id AS t, events.global_position AS g
    )
    SELECT new_version - n + 1, new_version, i.t::text, i.g FROM inserted i ORDER BY i.v DESC LIMIT 1;
END;
$$;
