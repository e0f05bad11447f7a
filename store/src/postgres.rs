//! PostgreSQL backend: tokio-postgres through a deadpool pool, no TLS.
//!
//! Global order is `(tx_id xid8, global_position)`; `global_position` is a unique id, not the
//! delivery order. Global reads (`read_all`, `head`, `count_after`) only return rows below a
//! horizon that no append still in flight can land under: a slow append is waited for, never
//! overtaken and skipped. Only appends hold it back, not the other transactions of the cluster.
//!
//! # The horizon
//!
//! * Every transaction inserting into `events` holds the shared advisory lock [`APPEND_LOCK`]
//!   from before it has a transaction id until after its commit is visible: a `BEFORE INSERT
//!   FOR EACH STATEMENT` trigger takes it (migration 0005) before the first row's `DEFAULT
//!   pg_current_xact_id()` assigns the id, and refuses a transaction that got an id without it.
//!   PostgreSQL removes a transaction from the proc array (its commit becomes visible) before
//!   it releases its locks.
//! * `SET_HORIZON` is a statement of its own: from its snapshot S1, the smallest running xid
//!   of S1 whose transaction holds the lock in this database (`pg_locks`: the advisory lock
//!   and the `transactionid` lock of the same virtual transaction), else `xmax(S1)`.
//! * The read is the NEXT statement (snapshot S2, taken after `pg_locks` was read), with
//!   `tx_id < horizon`. An appender below the horizon had finished at S1, or was running at
//!   S1 but no longer held its locks when `pg_locks` was read: finished before S2 either way,
//!   so S2 sees all its rows or none ever exist. In one statement the second case would be
//!   invisible to the read yet not counted, and skipped forever. An appender that gets its
//!   id after S1 gets one `>= xmax(S1) >= horizon`. A horizon stays safe once computed.
//! * Both statements go in one round trip (`below_horizon`); the horizon passes through
//!   the session setting `livechat.horizon`.
//! * Transactions that do not append (another database, another table, a report) are in S1
//!   but hold no lock: they hold back nothing. `horizon_age` is the age of the oldest append
//!   in flight.
//!
//! An append is one round trip: a single `INSERT ... SELECT` ([`APPEND`]) that checks the
//! expected version against the stream's current version and inserts the batch; the unique
//! `(stream_id, stream_version)` index makes a racing writer of the same stream fail instead
//! of both winning. No lock beyond that index entry and the shared appenders' lock, no counter
//! row. Nothing is NOTIFYed inside the transaction; local readers are woken through the
//! `commits` channel after the commit, other processes poll.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio::sync::watch;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::bounded::{self, Timeouts};
use crate::error::{describe_pg, StoreError};
use crate::event::{store_time, NewEvent, Position, RecordedEvent};
use crate::events::{
    idempotent_result, validate_append, AppendResult, Backend, Direction, EventStore, ExpectedVersion, ReadAll,
    StoredId,
};
use crate::migrate::{self, Migration};
use crate::url::StoreUrl;
use crate::views::{
    check_commit, check_lookup, printable, shadow_name, Commit, Doc, DocChange, Ownership, ParkedEvent, ProjectorState,
    ViewStore,
};

/// Pooled connections per store (dedicated ownership connections come on top).
const POOL_SIZE: usize = 16;
/// `pg_advisory_xact_lock` key serialising migrations: "livechat" in ASCII.
const MIGRATION_LOCK: i64 = 0x6c69_7665_6368_6174;
/// Shared `pg_advisory_xact_lock_shared` key every appending transaction holds from before it
/// has an xid until its commit is visible ("lc:event" in ASCII; taken by the trigger of
/// migration 0005, which spells the same number). A transaction that must write something
/// else before appending takes it first.
pub const APPEND_LOCK: i64 = 0x6c63_3a65_7665_6e74;

/// The advisory locks [`APPEND_LOCK`] in this database, of the locks' CTE `l`, as `pg_locks`
/// shows a bigint key: high half in `classid`, low half in `objid`, `objsubid` 1.
macro_rules! appenders {
    () => {
        "l.locktype = 'advisory' AND l.granted
           AND l.classid = 1818442341 AND l.objid = 1986358900 AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    };
}

/// Sets the session's `livechat.horizon` to the horizon of global reads: the smallest xid of
/// this statement's snapshot that belongs to a running appender, else the snapshot's xmax
/// (see the module docs). A statement of its own; the read that follows it on the same
/// connection compares with [`BELOW_HORIZON`]. `pg_locks` is read once (`MATERIALIZED`):
/// each scan of it takes every lock-manager partition lock. Only the holder's own
/// `transactionid` lock (`ExclusiveLock`) counts, not one it waits for; xids are matched on
/// their low 32 bits. A hot standby does not see the primary's advisory locks: read there,
/// the horizon falls back to the snapshot's xmin (waits for every transaction, as before).
const SET_HORIZON: &str = concat!(
    "SELECT set_config('livechat.horizon', (
     WITH s AS (SELECT pg_current_snapshot() AS snap),
     l AS MATERIALIZED (SELECT locktype, database, classid, objid, objsubid, virtualtransaction,
                               transactionid, mode, granted FROM pg_locks),
     appenders AS (
         SELECT t.transactionid::text::bigint AS xid32 FROM l
         JOIN l AS t ON t.virtualtransaction = l.virtualtransaction
             AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
         WHERE ",
    appenders!(),
    ")
     SELECT CASE WHEN pg_is_in_recovery() THEN pg_snapshot_xmin(s.snap) ELSE coalesce(
         (SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x
          WHERE (x::text::bigint & 4294967295) IN (SELECT xid32 FROM appenders)),
         pg_snapshot_xmax(s.snap)) END::text
     FROM s), false)"
);

/// The gate of a global read, after [`SET_HORIZON`] on the same connection. Unset (never on
/// a connection that ran it) it is NULL: nothing passes.
const BELOW_HORIZON: &str = "events.tx_id < current_setting('livechat.horizon', true)::xid8";

/// Age of the oldest append in flight (holding [`APPEND_LOCK`] and an xid): what holds the
/// horizon back. Transactions that do not append never do. Appenders of other roles count
/// only with `pg_read_all_stats` (`pg_stat_activity` hides their transactions otherwise).
const HORIZON_AGE: &str = concat!(
    "WITH l AS MATERIALIZED (SELECT locktype, database, classid, objid, objsubid, pid, granted FROM pg_locks)
     SELECT coalesce(extract(epoch FROM clock_timestamp() - min(a.xact_start)), 0)::float8
     FROM l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE ",
    appenders!(),
    " AND a.backend_xid IS NOT NULL"
);

const EVENT_COLUMNS: &str = "events.tx_id::text AS tx, events.global_position, events.event_id, events.stream_id, \
     events.stream_version, events.event_type, events.schema_version, events.data, events.metadata, events.recorded_at";

/// The append: inserts the batch after the stream's last version if the expectation
/// (`$2`: 0 any, 1 no stream, 2 stream exists, 3 exact `$3`) holds; no row back means it
/// did not. Public so that tests can hold an append open inside their own transaction.
pub const APPEND: &str =
    "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at)
     SELECT u.id, $1, cur.v + u.ord, u.typ, u.sch, u.dat, u.met, u.tim
     FROM (SELECT coalesce(max(stream_version), -1) AS v FROM events WHERE stream_id = $1) AS cur,
          unnest($4::uuid[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[], $9::timestamptz[])
              WITH ORDINALITY AS u (id, typ, sch, dat, met, tim, ord)
     WHERE CASE $2::int WHEN 0 THEN true WHEN 1 THEN cur.v = -1 WHEN 2 THEN cur.v >= 0 ELSE cur.v = $3::bigint END
     ORDER BY u.ord
     RETURNING stream_version, tx_id::text, global_position";

/// [`APPEND`] for the common single-event case, with scalar parameters: no array encoding.
pub const APPEND_ONE: &str =
    "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at)
     SELECT $4, $1, cur.v + 1, $5, $6, $7, $8, $9
     FROM (SELECT coalesce(max(stream_version), -1) AS v FROM events WHERE stream_id = $1) AS cur
     WHERE CASE $2::int WHEN 0 THEN true WHEN 1 THEN cur.v = -1 WHEN 2 THEN cur.v >= 0 ELSE cur.v = $3::bigint END
     RETURNING stream_version, tx_id::text, global_position";

/// How often an `Any` append retries after losing a race for the next version.
const ANY_RETRIES: usize = 100;

const STREAM_VERSION: &str = "SELECT max(stream_version) FROM events WHERE stream_id = $1";

const STORED_IDS: &str =
    "SELECT event_id, stream_id, stream_version, tx_id::text, global_position, recorded_at FROM events WHERE event_id = ANY($1)";

const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)";

const DOC_COLUMNS: &str = "view, id, partition, sort_key, body, version";

const DELETE_DOCS: &str = "DELETE FROM view_docs d USING unnest($1::text[], $2::text[]) AS k (view, id)
     WHERE d.view = k.view AND d.id = k.id";

const PUT_DOCS: &str = "INSERT INTO view_docs (view, id, partition, sort_key, body, version)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[])
     ON CONFLICT (view, id) DO UPDATE SET partition = excluded.partition, sort_key = excluded.sort_key,
         body = excluded.body, version = view_docs.version + excluded.version";

const PARK: &str = "INSERT INTO parked_events (projector, position_tx, position_pos, event_id, stream_id,
         stream_version, event_type, error, attempts, parked_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (projector, position_tx, position_pos) DO UPDATE SET event_id = excluded.event_id,
         stream_id = excluded.stream_id, stream_version = excluded.stream_version,
         event_type = excluded.event_type, error = excluded.error, attempts = excluded.attempts,
         parked_at = excluded.parked_at";

/// Moves a checkpoint the caller expects to find at `($7, $8)`; zero rows means it moved.
const MOVE_CHECKPOINT: &str = "UPDATE projector_checkpoints SET position_tx = $2, position_pos = $3,
         projector_version = $4, last_event_at = coalesce($5, last_event_at), updated_at = $6, heartbeat_at = $6,
         last_error = NULL, last_error_at = NULL
     WHERE projector = $1 AND position_tx = $7 AND position_pos = $8";

/// Creates a checkpoint the caller expects not to exist; zero rows means another runner made it.
const CREATE_CHECKPOINT: &str = "INSERT INTO projector_checkpoints (projector, position_tx, position_pos,
         projector_version, last_event_at, updated_at, heartbeat_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (projector) DO NOTHING";

const CHECKPOINT: &str = "SELECT position_tx, position_pos FROM projector_checkpoints WHERE projector = $1";

const STATE: &str = "SELECT position_tx, position_pos, projector_version, last_event_at, updated_at, heartbeat_at,
         (SELECT count(*) FROM parked_events p WHERE p.projector = c.projector), last_error, last_error_at
     FROM projector_checkpoints c WHERE projector = $1";

const PARKED: &str = "SELECT projector, position_tx, position_pos, event_id, stream_id, stream_version, event_type,
         error, attempts, parked_at
     FROM parked_events WHERE projector = $1 ORDER BY position_tx, position_pos LIMIT $2";

/// Session lock making one process the runner of a projector, on a dedicated connection.
const OWN: &str = "SELECT pg_try_advisory_lock(hashtextextended('livechat:projector:' || $1::text, 0))";

struct Inner {
    pool: Pool,
    config: tokio_postgres::Config,
    timeouts: Timeouts,
    commits: watch::Sender<u64>,
    /// Notices from `LISTEN`, and whether the listening connection was started.
    notices: tokio::sync::broadcast::Sender<String>,
    listening: std::sync::Once,
}

/// The `NOTIFY` channel of ephemeral notices between processes.
const NOTICES: &str = "livechat_notices";

/// Listens for notices on a connection of its own, reconnecting after a failure, until the
/// store is dropped.
async fn listen(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(config) = inner.upgrade().map(|i| i.config.clone()) else { return };
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                let _ = tx.send(n.payload().to_string());
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "notice listener connection failed");
                                break;
                            }
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {NOTICES}")).await {
                    tracing::warn!(error = %e, "cannot listen for notices");
                } else {
                    while let Some(payload) = rx.recv().await {
                        let Some(inner) = inner.upgrade() else { return };
                        let _ = inner.notices.send(payload);
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %describe_pg(&e), "cannot connect the notice listener"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Event store and view store over a PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

/// Clamps a count or position into PostgreSQL's `bigint`.
fn big(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StoreError> {
    row.try_get(idx).map_err(corrupt)
}

fn parse_tx(s: &str) -> Result<u64, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("transaction id '{s}' is not an unsigned integer")))
}

fn decode_event(r: &Row) -> Result<RecordedEvent, StoreError> {
    let tx: String = get(r, 0)?;
    Ok(RecordedEvent {
        position: Position::new(parse_tx(&tx)?, get::<i64>(r, 1)? as u64),
        event_id: get(r, 2)?,
        stream_id: get(r, 3)?,
        stream_version: get::<i64>(r, 4)? as u64,
        event_type: get(r, 5)?,
        schema_version: get::<i32>(r, 6)? as u32,
        data: get(r, 7)?,
        metadata: get(r, 8)?,
        recorded_at: get(r, 9)?,
    })
}

fn decode_doc(r: &Row) -> Result<Doc, StoreError> {
    Ok(Doc {
        view: get(r, 0)?,
        id: get(r, 1)?,
        partition: get(r, 2)?,
        sort_key: get(r, 3)?,
        body: get(r, 4)?,
        version: get::<i64>(r, 5)? as u64,
    })
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// Adds a parameter and returns its placeholder.
fn param(params: &mut Params, value: impl ToSql + Sync + Send + 'static) -> String {
    params.push(Box::new(value));
    format!("${}", params.len())
}

/// SQL and parameters of a global read: below the horizon, in `(tx_id, global_position)` order.
fn read_all_sql(q: &ReadAll) -> (String, Params) {
    let mut params: Params = Vec::new();
    let mut conds = vec![BELOW_HORIZON.to_string()];
    let bound = |op: &str, p: Position, params: &mut Params| {
        let tx = param(params, p.tx.to_string());
        let pos = param(params, big(p.pos));
        format!("(events.tx_id, events.global_position) {op} ({tx}::text::xid8, {pos}::bigint)")
    };
    match (q.direction, q.from) {
        (Direction::Forward, from) => conds.push(bound(">", from.unwrap_or(Position::START), &mut params)),
        (Direction::Backward, Some(before)) => conds.push(bound("<", before, &mut params)),
        (Direction::Backward, None) => {}
    }
    if let Some(s) = &q.filter.stream {
        conds.push(format!("events.stream_id = {}", param(&mut params, s.clone())));
    }
    if let Some(c) = &q.filter.category {
        conds.push(format!("events.category = {}", param(&mut params, c.clone())));
    }
    if !q.filter.event_types.is_empty() {
        conds.push(format!("events.event_type = ANY({})", param(&mut params, q.filter.event_types.clone())));
    }
    let order = match q.direction {
        Direction::Forward => "ASC",
        Direction::Backward => "DESC",
    };
    let limit = param(&mut params, big(q.limit as u64));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY events.tx_id {order}, events.global_position {order} LIMIT {limit}",
        conds.join(" AND ")
    );
    (sql, params)
}

/// The dedicated connection holding a projector's advisory lock; dropping it closes the
/// connection, which releases the lock.
struct OwnerConnection {
    client: tokio_postgres::Client,
    _task: tokio::task::JoinHandle<()>,
}

/// A pooled connection. Dropped during a call that was cut short ([`bounded::cancelling`]),
/// it may still carry statements the database has not answered: it is closed instead of
/// going back to the pool, so that no later call queues behind them. (A transaction dropped
/// before its `COMMIT` is rolled back by tokio-postgres either way.)
struct Pooled(Option<Object>);

impl std::ops::Deref for Pooled {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.0.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Object {
        self.0.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(object) = self.0.take().filter(|_| bounded::cancelling()) {
            tracing::debug!("discarding a PostgreSQL connection left in the middle of a call");
            drop(Object::take(object));
        }
    }
}

/// `-c name=value` server settings for every connection, unless the URL's `options` set them.
fn with_settings(options: Option<&str>, settings: &[(&str, String)]) -> String {
    let mut out = options.unwrap_or_default().to_string();
    for (name, value) in settings {
        if !out.contains(name) {
            out = format!("{out} -c {name}={value}").trim_start().to_string();
        }
    }
    out
}

impl PgStore {
    /// [`PgStore::connect_with`] the default [`Timeouts`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        PgStore::connect_with(url, Timeouts::default()).await
    }

    /// Connects to `url` (`postgres://user:password@host:port/db`), opening one connection now
    /// so that an unreachable database is reported here, within the connect timeout.
    pub async fn connect_with(url: &str, timeouts: Timeouts) -> Result<Self, StoreError> {
        let shown = StoreUrl::Postgres(url.to_string()).to_string();
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Invalid(format!("invalid PostgreSQL URL {shown}: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeouts.connect);
        }
        if config.get_application_name().is_none() {
            config.application_name("livechat");
        }
        let millis = |d: Duration| d.as_millis().max(1).to_string();
        let options = with_settings(
            config.get_options(),
            &[
                // An appending transaction of ours left idle would hold the read horizon of
                // every reader; the server ends it instead. Ours never idle: a guard.
                ("idle_in_transaction_session_timeout", "60000".to_string()),
                // The server gives up on a statement about when the caller does (migrations
                // and rebuild swaps set their own).
                ("statement_timeout", millis(timeouts.call)),
            ],
        );
        config.options(&options);
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            // The pool's own timeouts need a runtime to run on.
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(timeouts.connect))
            .wait_timeout(Some(timeouts.pool_wait))
            .recycle_timeout(Some(timeouts.connect))
            .build()
            .map_err(|e| StoreError::Database(format!("cannot set up a connection pool for {shown}: {e}")))?;
        let first = pool.get().await.map_err(|e| {
            let detail = match &e {
                deadpool_postgres::PoolError::Backend(e) => describe_pg(e),
                deadpool_postgres::PoolError::Timeout(_) => {
                    format!("no answer within {} ms", timeouts.connect.as_millis())
                }
                e => e.to_string(),
            };
            StoreError::Database(format!("cannot connect to PostgreSQL at {shown}: {detail}"))
        })?;
        drop(first);
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                config,
                timeouts,
                commits: watch::channel(0).0,
                notices: tokio::sync::broadcast::channel(1024).0,
                listening: std::sync::Once::new(),
            }),
        })
    }

    /// A pooled connection; the pool's timeouts are timeouts that wrote nothing.
    async fn client(&self) -> Result<Pooled, StoreError> {
        use deadpool_postgres::{PoolError, TimeoutType};
        let t = self.inner.timeouts;
        match self.inner.pool.get().await {
            Ok(object) => Ok(Pooled(Some(object))),
            Err(PoolError::Timeout(kind)) => {
                let (op, after) = match kind {
                    TimeoutType::Wait => ("a free pooled connection", t.pool_wait),
                    TimeoutType::Create => ("a new connection", t.connect),
                    TimeoutType::Recycle => ("a connection check", t.connect),
                };
                Err(StoreError::Timeout { op, after, outcome_unknown: false })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whole views move in one statement: the bound of [`Timeouts::maintenance`].
    fn maintenance_statement_timeout(&self) -> String {
        format!("SET LOCAL statement_timeout = {}", self.inner.timeouts.maintenance().as_millis().max(1))
    }

    fn notify(&self) {
        self.inner.commits.send_modify(|n| *n += 1);
    }

    /// Applies the embedded migrations that are missing; returns those applied. Safe when
    /// several processes migrate at once: they take turns on an advisory lock.
    pub async fn migrate(&self) -> Result<Vec<&'static Migration>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A migration may rewrite large tables: not bounded like a request's statement.
        tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(SCHEMA_TABLE).await?;
        let current: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await?.get(0);
        let todo = migrate::pending(migrate::POSTGRES, current)?;
        for m in &todo {
            tx.batch_execute(m.sql).await.map_err(|e| {
                StoreError::Database(format!("migration {} ({}) failed: {}", m.version, m.name, describe_pg(&e)))
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
                &[&m.version, &m.name],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(todo)
    }

    /// Refuses a database whose schema is newer than this binary, or not migrated yet.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let exists: bool = client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]).await?.get(0);
        let current: i64 = if exists {
            client.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await?.get(0)
        } else {
            0
        };
        migrate::require_current(migrate::POSTGRES, current)
    }

    /// An append whose expectation failed: the original result if it was a retry of an
    /// append already stored, otherwise `WrongExpectedVersion` with the actual version.
    async fn refused(
        &self,
        client: &Object,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let found = stored_ids(client, &ids).await?;
        if !found.is_empty() {
            return idempotent_result(stream, expected, events, &found);
        }
        let stmt = client.prepare_cached(STREAM_VERSION).await?;
        let actual: Option<i64> = client.query_one(&stmt, &[&stream]).await?.get(0);
        Err(StoreError::WrongExpectedVersion { stream: stream.to_string(), expected, actual: actual.map(|v| v as u64) })
    }

    async fn query_events(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        client.query(&stmt, params).await?.iter().map(decode_event).collect()
    }
}

/// Runs the global read `sql` (gated by [`BELOW_HORIZON`]) right after [`SET_HORIZON`], in
/// one round trip: both are sent at once (tokio-postgres pipelines futures polled together,
/// in the order first polled), each in its own implicit transaction, and the server only
/// starts the read, taking its snapshot, once the horizon statement has finished.
async fn below_horizon(client: &Object, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
    let (set, read) = tokio::try_join!(client.prepare_cached(SET_HORIZON), client.prepare_cached(sql))?;
    let (_, rows) = tokio::try_join!(client.query_one(&set, &[]), client.query(&read, params))?;
    Ok(rows)
}

async fn stored_ids(client: &Object, ids: &[Uuid]) -> Result<Vec<StoredId>, StoreError> {
    let stmt = client.prepare_cached(STORED_IDS).await?;
    client
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| {
            let tx: String = get(r, 3)?;
            Ok(StoredId {
                event_id: get(r, 0)?,
                stream_id: get(r, 1)?,
                stream_version: get::<i64>(r, 2)? as u64,
                position: Position::new(parse_tx(&tx)?, get::<i64>(r, 4)? as u64),
                recorded_at: get(r, 5)?,
            })
        })
        .collect()
}

#[async_trait]
impl EventStore for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let (kind, pinned): (i32, Option<i64>) = match expected {
            ExpectedVersion::Any => (0, None),
            ExpectedVersion::NoStream => (1, None),
            ExpectedVersion::StreamExists => (2, None),
            ExpectedVersion::Exact(v) => (3, Some(big(v))),
        };
        let now = store_time(Utc::now());
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let schemas = events
            .iter()
            .map(|e| {
                i32::try_from(e.schema_version).map_err(|_| {
                    StoreError::Invalid(format!(
                        "event {}: schema version {} is too large",
                        e.event_id, e.schema_version
                    ))
                })
            })
            .collect::<Result<Vec<i32>, _>>()?;
        let data: Vec<&Value> = events.iter().map(|e| &e.data).collect();
        let metadata: Vec<&Value> = events.iter().map(|e| &e.metadata).collect();
        let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.recorded_at.map(store_time).unwrap_or(now)).collect();

        let client = self.client().await?;
        let single = events.len() == 1;
        let stmt = client.prepare_cached(if single { APPEND_ONE } else { APPEND }).await?;
        let params: [&(dyn ToSql + Sync); 9] = if single {
            [&stream, &kind, &pinned, &ids[0], &types[0], &schemas[0], data[0], metadata[0], &times[0]]
        } else {
            [&stream, &kind, &pinned, &ids, &types, &schemas, &data, &metadata, &times]
        };
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match client.query(&stmt, &params).await {
                Ok(rows) if !rows.is_empty() => {
                    let (mut last_version, mut tx, mut pos) = (0i64, String::new(), 0i64);
                    for row in &rows {
                        let v: i64 = get(row, 0)?;
                        if v >= last_version {
                            (last_version, tx, pos) = (v, get(row, 1)?, get(row, 2)?);
                        }
                    }
                    break AppendResult {
                        first_version: (last_version + 1) as u64 - rows.len() as u64,
                        last_version: last_version as u64,
                        position: Position::new(parse_tx(&tx)?, pos as u64),
                        recorded_at: *times.last().expect("an append has events"),
                    };
                }
                // The expectation did not hold.
                Ok(_) => break self.refused(&client, stream, expected, &events).await?,
                Err(e) => {
                    let Some(db) = e.as_db_error() else { return Err(e.into()) };
                    if *db.code() != SqlState::UNIQUE_VIOLATION {
                        return Err(e.into());
                    }
                    if db.constraint() == Some("events_event_id_key") {
                        let found = stored_ids(&client, &ids).await?;
                        break idempotent_result(stream, expected, &events, &found)?;
                    }
                    // A concurrent writer took the next version first.
                    if expected != ExpectedVersion::Any || attempt >= ANY_RETRIES {
                        break self.refused(&client, stream, expected, &events).await?;
                    }
                }
            }
        };
        drop(client);
        self.notify();
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // A stream's versions commit in order (a writer only takes version n + 1 once n is
        // committed, the unique index makes racers wait): no horizon needed.
        let sql = match direction {
            Direction::Forward => format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3"
            ),
            Direction::Backward => format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version <= $2 ORDER BY stream_version DESC LIMIT $3"
            ),
        };
        self.query_events(&sql, &[&stream, &big(from_version), &big(limit as u64)]).await
    }

    async fn read_all(&self, q: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let (sql, params) = read_all_sql(q);
        let client = self.client().await?;
        below_horizon(&client, &sql, &refs(&params)).await?.iter().map(decode_event).collect()
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(STREAM_VERSION).await?;
        let version: Option<i64> = get(&client.query_one(&stmt, &[&stream]).await?, 0)?;
        Ok(version.map(|v| v as u64))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT tx_id::text, global_position FROM events WHERE {BELOW_HORIZON}
             ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1"
        );
        let row = below_horizon(&client, &sql, &[]).await?.into_iter().next();
        row.map(|r| Ok(Position::new(parse_tx(&get::<String>(&r, 0)?)?, get::<i64>(&r, 1)? as u64))).transpose()
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM events
                 WHERE (events.tx_id, events.global_position) > ($1::text::xid8, $2::bigint)
                   AND {BELOW_HORIZON}
                 LIMIT $3) AS visible"
        );
        let rows = below_horizon(&client, &sql, &[&after.tx.to_string(), &big(after.pos), &big(cap)]).await?;
        let row = rows.first().ok_or_else(|| corrupt("count(*) returned no row"))?;
        Ok(get::<i64>(row, 0)? as u64)
    }

    async fn horizon_age(&self) -> Result<Option<f64>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(HORIZON_AGE).await?;
        let age: f64 = get(&client.query_one(&stmt, &[]).await?, 0)?;
        Ok(Some(age))
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    async fn notify_others(&self, payload: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT pg_notify($1, $2)").await?;
        client.execute(&stmt, &[&NOTICES, &payload]).await?;
        Ok(())
    }

    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        let receiver = self.inner.notices.subscribe();
        let inner = Arc::downgrade(&self.inner);
        self.inner.listening.call_once(|| {
            tokio::spawn(listen(inner));
        });
        Some(receiver)
    }
}

/// What a commit's document changes amount to per document, applied in two statements.
#[derive(Default)]
struct DocOutcome<'a> {
    /// The last `Put`, unless a `Delete` came after it.
    put: Option<(&'a str, &'a str, &'a Value)>,
    /// `Put`s since the last `Delete` (or the start): the version increment.
    puts: i64,
    /// A `Delete` happened: the stored document goes first.
    deleted: bool,
}

async fn commit_tx(client: &mut Object, c: &Commit) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // Views are rebuilt from the log and their checkpoint commits with them: a crash may
    // only make projectors redo their last batches, so their commits need not wait for the
    // disk (never risks corruption; appends stay synchronous).
    tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
    let last_event_at = c.last_event_at.map(store_time);
    let now = store_time(c.now);
    let (to_tx, to_pos) = (big(c.checkpoint.tx), big(c.checkpoint.pos));
    let version = c.projector_version as i32;
    // The checkpoint first: the conditional write both checks and locks it, so two runners
    // cannot both continue from the same checkpoint.
    let written = match c.expected {
        Some(p) => {
            let stmt = tx.prepare_cached(MOVE_CHECKPOINT).await?;
            tx.execute(&stmt, &[&c.projector, &to_tx, &to_pos, &version, &last_event_at, &now, &big(p.tx), &big(p.pos)])
                .await?
        }
        None => {
            let stmt = tx.prepare_cached(CREATE_CHECKPOINT).await?;
            tx.execute(&stmt, &[&c.projector, &to_tx, &to_pos, &version, &last_event_at, &now]).await?
        }
    };
    if written == 0 {
        let stmt = tx.prepare_cached(CHECKPOINT).await?;
        let current = tx
            .query_opt(&stmt, &[&c.projector])
            .await?
            .map(|r| Ok::<_, StoreError>(Position::new(get::<i64>(&r, 0)? as u64, get::<i64>(&r, 1)? as u64)))
            .transpose()?;
        return Err(StoreError::Busy(format!(
            "checkpoint of '{}' moved (expected {:?}, found {:?}): another runner is active",
            c.projector, c.expected, current
        )));
    }

    // Changes are folded per document (in key order, so concurrent commits lock rows in the
    // same order), with the same result as applying them one by one.
    let mut docs: BTreeMap<(&str, &str), DocOutcome> = BTreeMap::new();
    for change in &c.changes {
        let outcome = docs.entry(change.key()).or_default();
        match change {
            DocChange::Put { partition, sort_key, body, .. } => {
                outcome.put = Some((partition.as_str(), sort_key.as_str(), body));
                outcome.puts += 1;
            }
            DocChange::Delete { .. } => *outcome = DocOutcome { put: None, puts: 0, deleted: true },
        }
    }
    let deleted: Vec<(&str, &str)> = docs.iter().filter(|(_, o)| o.deleted).map(|(k, _)| *k).collect();
    if !deleted.is_empty() {
        let views: Vec<&str> = deleted.iter().map(|k| k.0).collect();
        let ids: Vec<&str> = deleted.iter().map(|k| k.1).collect();
        let stmt = tx.prepare_cached(DELETE_DOCS).await?;
        tx.execute(&stmt, &[&views, &ids]).await?;
    }
    let (mut views, mut ids, mut partitions, mut sort_keys, mut bodies, mut increments) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::<&Value>::new(), Vec::<i64>::new());
    for (&(view, id), o) in &docs {
        if let Some((partition, sort_key, body)) = o.put {
            views.push(view);
            ids.push(id);
            partitions.push(partition);
            sort_keys.push(sort_key);
            bodies.push(body);
            increments.push(o.puts);
        }
    }
    if !views.is_empty() {
        let stmt = tx.prepare_cached(PUT_DOCS).await?;
        tx.execute(&stmt, &[&views, &ids, &partitions, &sort_keys, &bodies, &increments]).await?;
    }
    if !c.parked.is_empty() {
        let stmt = tx.prepare_cached(PARK).await?;
        for p in &c.parked {
            tx.execute(
                &stmt,
                &[
                    &p.projector,
                    &big(p.position.tx),
                    &big(p.position.pos),
                    &p.event_id,
                    &p.stream_id,
                    &big(p.stream_version),
                    &p.event_type,
                    &p.error,
                    &(p.attempts.min(i32::MAX as u32) as i32),
                    &store_time(p.parked_at),
                ],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl ViewStore for PgStore {
    async fn get(&self, view: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        check_lookup([view, id])?;
        let client = self.client().await?;
        let stmt =
            client.prepare_cached(&format!("SELECT {DOC_COLUMNS} FROM view_docs WHERE view = $1 AND id = $2")).await?;
        client.query_opt(&stmt, &[&view, &id]).await?.as_ref().map(decode_doc).transpose()
    }

    async fn get_many(&self, view: &str, ids: &[String]) -> Result<Vec<Doc>, StoreError> {
        check_lookup(std::iter::once(view).chain(ids.iter().map(String::as_str)))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {DOC_COLUMNS} FROM view_docs WHERE view = $1 AND id = ANY($2)"))
            .await?;
        client.query(&stmt, &[&view, &ids]).await?.iter().map(decode_doc).collect()
    }

    async fn list(
        &self,
        view: &str,
        partition: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        check_lookup([Some(view), partition, after.map(|a| a.0), after.map(|a| a.1)].into_iter().flatten())?;
        let mut params: Params = Vec::new();
        let mut conds = vec![format!("view = {}", param(&mut params, view.to_string()))];
        if let Some(p) = partition {
            conds.push(format!("partition = {}", param(&mut params, p.to_string())));
        }
        if let Some((s, i)) = after {
            let s = param(&mut params, s.to_string());
            let i = param(&mut params, i.to_string());
            conds.push(format!("(sort_key, id) > ({s}, {i})"));
        }
        let limit = param(&mut params, big(limit as u64));
        let sql = format!(
            "SELECT {DOC_COLUMNS} FROM view_docs WHERE {} ORDER BY sort_key, id LIMIT {limit}",
            conds.join(" AND ")
        );
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await?;
        client.query(&stmt, &refs(&params)).await?.iter().map(decode_doc).collect()
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        check_commit(&commit)?;
        let mut client = self.client().await?;
        commit_tx(&mut client, &commit).await
    }

    async fn projector_state(&self, projector: &str) -> Result<Option<ProjectorState>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(STATE).await?;
        let Some(r) = client.query_opt(&stmt, &[&projector]).await? else { return Ok(None) };
        Ok(Some(ProjectorState {
            projector: projector.to_string(),
            position: Position::new(get::<i64>(&r, 0)? as u64, get::<i64>(&r, 1)? as u64),
            projector_version: get::<i32>(&r, 2)? as u32,
            last_event_at: get(&r, 3)?,
            updated_at: get(&r, 4)?,
            heartbeat_at: get(&r, 5)?,
            parked: get::<i64>(&r, 6)? as u64,
            last_error: get(&r, 7)?,
            last_error_at: get(&r, 8)?,
        }))
    }

    async fn record_error(&self, projector: &str, error: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("UPDATE projector_checkpoints SET last_error = $2, last_error_at = $3 WHERE projector = $1")
            .await?;
        client.execute(&stmt, &[&projector, &printable(error), &store_time(at)]).await?;
        Ok(())
    }

    async fn heartbeat(&self, projector: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("UPDATE projector_checkpoints SET heartbeat_at = $2 WHERE projector = $1").await?;
        client.execute(&stmt, &[&projector, &store_time(now)]).await?;
        Ok(())
    }

    async fn parked(&self, projector: &str, limit: usize) -> Result<Vec<ParkedEvent>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(PARKED).await?;
        client
            .query(&stmt, &[&projector, &big(limit as u64)])
            .await?
            .iter()
            .map(|r| {
                Ok(ParkedEvent {
                    projector: get(r, 0)?,
                    position: Position::new(get::<i64>(r, 1)? as u64, get::<i64>(r, 2)? as u64),
                    event_id: get(r, 3)?,
                    stream_id: get(r, 4)?,
                    stream_version: get::<i64>(r, 5)? as u64,
                    event_type: get(r, 6)?,
                    error: get(r, 7)?,
                    attempts: get::<i32>(r, 8)? as u32,
                    parked_at: get(r, 9)?,
                })
            })
            .collect()
    }

    async fn reset(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(&self.maintenance_statement_timeout()).await?;
        tx.execute("DELETE FROM view_docs WHERE view = ANY($1)", &[&views]).await?;
        tx.execute("DELETE FROM projector_checkpoints WHERE projector = $1", &[&projector]).await?;
        tx.execute("DELETE FROM parked_events WHERE projector = $1", &[&projector]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn swap_shadow(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(&self.maintenance_statement_timeout()).await?;
        for v in views {
            tx.execute("DELETE FROM view_docs WHERE view = $1", &[v]).await?;
            tx.execute("UPDATE view_docs SET view = $1 WHERE view = $2", &[v, &shadow_name(v)]).await?;
        }
        let shadow = shadow_name(projector);
        for table in ["projector_checkpoints", "parked_events"] {
            tx.execute(&format!("DELETE FROM {table} WHERE projector = $1"), &[&projector]).await?;
            tx.execute(&format!("UPDATE {table} SET projector = $1 WHERE projector = $2"), &[&projector, &shadow])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn touch(&self, subject: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO activity (subject, last_seen) VALUES ($1, $2)
                 ON CONFLICT (subject) DO UPDATE SET last_seen = greatest(activity.last_seen, excluded.last_seen)",
            )
            .await?;
        client.execute(&stmt, &[&subject, &store_time(at)]).await?;
        Ok(())
    }

    async fn last_touched(&self, subject: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT last_seen FROM activity WHERE subject = $1").await?;
        client.query_opt(&stmt, &[&subject]).await?.map(|r| get(&r, 0)).transpose()
    }

    async fn try_own(&self, projector: &str) -> Result<Option<Ownership>, StoreError> {
        // A session lock on a connection of its own, outside any transaction: it lives exactly
        // as long as the connection, and never holds back the xid horizon.
        let cannot =
            |why: String| StoreError::Database(format!("cannot open a connection to own '{projector}': {why}"));
        let connect = self.inner.timeouts.connect;
        let (client, connection) = tokio::time::timeout(connect, self.inner.config.connect(NoTls))
            .await
            .map_err(|_| cannot(format!("no answer within {} ms", connect.as_millis())))?
            .map_err(|e| cannot(describe_pg(&e)))?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "projector ownership connection failed");
            }
        });
        let owned: bool = client.query_one(OWN, &[&projector]).await?.get(0);
        if !owned {
            return Ok(None);
        }
        Ok(Some(Ownership::new(OwnerConnection { client, _task: task }, |c| !c.client.is_closed())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventFilter;

    #[test]
    fn the_trigger_and_the_readers_name_the_same_lock() {
        let sql = migrate::POSTGRES.iter().find(|m| m.name == "append_lock").expect("migration").sql;
        let (high, low) = (APPEND_LOCK >> 32, APPEND_LOCK & 0xffff_ffff);
        assert!(sql.contains(&format!("pg_advisory_xact_lock_shared({APPEND_LOCK})")), "{sql}");
        for text in [sql, SET_HORIZON, HORIZON_AGE] {
            assert!(text.contains(&format!("classid = {high} AND")), "{text}");
            assert!(text.contains(&format!("objid = {low} AND")), "{text}");
        }
    }

    #[test]
    fn global_reads_are_gated_and_ordered_by_transaction_then_position() {
        let (sql, params) = read_all_sql(&ReadAll {
            from: Some(Position::new(7, 3)),
            direction: Direction::Forward,
            limit: 10,
            filter: EventFilter {
                stream: Some("s-1".into()),
                category: Some("s".into()),
                event_types: vec!["A".into(), "B".into()],
            },
        });
        assert!(sql.contains("WHERE events.tx_id < current_setting('livechat.horizon', true)::xid8 AND"), "{sql}");
        assert!(sql.contains("(events.tx_id, events.global_position) > ($1::text::xid8, $2::bigint)"), "{sql}");
        assert!(sql.contains("events.stream_id = $3 AND events.category = $4 AND events.event_type = ANY($5)"));
        assert!(sql.ends_with("ORDER BY events.tx_id ASC, events.global_position ASC LIMIT $6"), "{sql}");
        assert_eq!(params.len(), 6);

        let (sql, params) = read_all_sql(&ReadAll {
            from: None,
            direction: Direction::Backward,
            limit: 5,
            filter: EventFilter::default(),
        });
        assert!(sql.contains(BELOW_HORIZON), "{sql}");
        assert!(!sql.contains("global_position) <"), "{sql}");
        assert!(sql.ends_with("ORDER BY events.tx_id DESC, events.global_position DESC LIMIT $1"), "{sql}");
        assert_eq!(params.len(), 1);

        let (sql, _) = read_all_sql(&ReadAll {
            from: Some(Position::new(9, 0)),
            direction: Direction::Backward,
            limit: 5,
            filter: EventFilter::default(),
        });
        assert!(sql.contains("(events.tx_id, events.global_position) < ($1::text::xid8, $2::bigint)"), "{sql}");
    }

    #[tokio::test]
    async fn an_unreachable_database_fails_promptly_with_a_clear_error() {
        // Port 1 on localhost: nothing listens, the connection is refused at once.
        let started = std::time::Instant::now();
        let err = PgStore::connect("postgres://livechat:secret@127.0.0.1:1/livechat").await.err().expect("no server");
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
        assert!(!err.is_about_data(), "an unreachable database is not the data's fault");
        let StoreError::Database(msg) = err else { panic!("expected a database error, got {err:?}") };
        assert!(msg.contains("cannot connect to PostgreSQL at postgres://livechat:***@127.0.0.1:1/livechat"), "{msg}");
        assert!(msg.contains("refused"), "the reason is part of the message: {msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }

    #[tokio::test]
    async fn an_invalid_url_is_refused() {
        assert!(matches!(PgStore::connect("postgres://h:notaport/db").await, Err(StoreError::Invalid(_))));
    }
}
