-- Read models: documents written by projectors together with their checkpoint.
CREATE TABLE view_docs (
    view      TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    partition TEXT    NOT NULL,
    sort_key  TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (view, id)
);
CREATE INDEX view_docs_by_partition ON view_docs (view, partition, sort_key, id);
CREATE INDEX view_docs_by_sort_key ON view_docs (view, sort_key, id);

CREATE TABLE projector_checkpoints (
    projector         TEXT    PRIMARY KEY,
    position_tx       INTEGER NOT NULL,
    position_pos      INTEGER NOT NULL,
    projector_version INTEGER NOT NULL,
    last_event_at     INTEGER,          -- recorded_at of the last applied event, microseconds
    updated_at        INTEGER NOT NULL, -- microseconds
    heartbeat_at      INTEGER NOT NULL  -- microseconds
);

CREATE TABLE parked_events (
    projector      TEXT    NOT NULL,
    position_tx    INTEGER NOT NULL,
    position_pos   INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    error          TEXT    NOT NULL,
    attempts       INTEGER NOT NULL,
    parked_at      INTEGER NOT NULL,
    PRIMARY KEY (projector, position_tx, position_pos)
);
