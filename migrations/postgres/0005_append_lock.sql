-- Appenders announce themselves, so that global reads wait for appends in flight only and
-- not for every transaction of the cluster (see store/src/postgres.rs, "The horizon").
--
-- Every transaction that inserts into events holds the shared transaction-level advisory
-- lock 7810150386243038836 ("lc:event", postgres::APPEND_LOCK) from BEFORE it has a
-- transaction id until after its commit is visible (locks are released after the commit
-- leaves the proc array). A statement-level BEFORE trigger takes it before the first row,
-- hence before the row's DEFAULT pg_current_xact_id() assigns the id. A transaction that
-- already has an id (it wrote something else first) and does not hold the lock yet is
-- refused: readers may already have read past its id. Such a transaction must take the
-- lock first: SELECT pg_advisory_xact_lock_shared(7810150386243038836).
CREATE FUNCTION livechat_lock_for_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        PERFORM pg_advisory_xact_lock_shared(7810150386243038836);
    ELSIF NOT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
          AND classid = 1818442341 AND objid = 1986358900 AND objsubid = 1
    ) THEN
        RAISE EXCEPTION 'events must be appended before any other write of their transaction'
            USING ERRCODE = '55000',
                  HINT = 'take pg_advisory_xact_lock_shared(7810150386243038836) first';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_lock_for_append BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION livechat_lock_for_append();
