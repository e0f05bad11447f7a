-- Read models: documents written by projectors together with their checkpoint.
-- Bodies are jsonb so that analysts can query views with SQL.
-- Keys use the "C" collation: listings order by bytes, like the other backends, whatever
-- the database locale.
CREATE TABLE view_docs (
    view      text COLLATE "C" NOT NULL,
    id        text COLLATE "C" NOT NULL,
    partition text COLLATE "C" NOT NULL,
    sort_key  text COLLATE "C" NOT NULL,
    body      jsonb  NOT NULL,
    version   bigint NOT NULL,
    PRIMARY KEY (view, id)
);
CREATE INDEX view_docs_by_partition ON view_docs (view, partition, sort_key, id);
CREATE INDEX view_docs_by_sort_key ON view_docs (view, sort_key, id);

CREATE TABLE projector_checkpoints (
    projector         text        PRIMARY KEY,
    position_tx       bigint      NOT NULL,
    position_pos      bigint      NOT NULL,
    projector_version integer     NOT NULL,
    last_event_at     timestamptz,
    updated_at        timestamptz NOT NULL,
    heartbeat_at      timestamptz NOT NULL
);

CREATE TABLE parked_events (
    projector      text        NOT NULL,
    position_tx    bigint      NOT NULL,
    position_pos   bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL,
    event_type     text        NOT NULL,
    error          text        NOT NULL,
    attempts       integer     NOT NULL,
    parked_at      timestamptz NOT NULL,
    PRIMARY KEY (projector, position_tx, position_pos)
);
