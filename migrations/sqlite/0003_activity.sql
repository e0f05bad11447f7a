-- Last activity of a subject (an operator): ephemeral presence data, not events. The
-- inactivity sweeper reads it to turn "no activity for 30 minutes" into events.
CREATE TABLE activity (
    subject   TEXT    PRIMARY KEY,
    last_seen INTEGER NOT NULL -- microseconds since the Unix epoch, UTC
);
