-- Last activity of a subject (an operator): ephemeral presence data, not events. The
-- inactivity sweeper reads it to turn "no activity for 30 minutes" into events.
CREATE TABLE activity (
    subject   text        PRIMARY KEY,
    last_seen timestamptz NOT NULL
);
