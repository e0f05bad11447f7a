//! Embedded SQLite backend: WAL, one writer connection, readers off the async runtime.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, ToSql, TransactionBehavior};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{category_of, store_time, NewEvent, Position, RecordedEvent};
use crate::events::{
    idempotent_result, validate_append, AppendResult, Backend, Direction, EventStore, ExpectedVersion, ReadAll,
    StoredId,
};
use crate::migrate::{self, Migration};
use crate::views::{
    check_commit, check_lookup, printable, shadow_name, Commit, Doc, DocChange, Ownership, ParkedEvent, ProjectorState,
    ViewStore,
};

/// How hard SQLite syncs at commit (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every commit reaches the disk before it is acknowledged.
    #[default]
    Full,
    /// Faster; a power loss may drop the last commits (never corrupts).
    Normal,
}

struct Inner {
    path: PathBuf,
    durability: Durability,
    busy: Duration,
    writer: Mutex<Connection>,
    /// Appends waiting for the writer (group commit).
    pending: Mutex<Vec<Pending>>,
    readers: Mutex<Vec<Connection>>,
    commits: watch::Sender<u64>,
}

/// Event store and view store over one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("timestamp {us} out of range")))
}

fn json(s: String) -> Result<Value, StoreError> {
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("stored JSON does not parse: {e}")))
}

fn open_connection(path: &Path, durability: Durability, busy: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Database(format!("cannot open SQLite database {}: {e}", path.display())))?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    // Waiting for another process's lock ends about when the caller's bound does.
    conn.busy_timeout(busy)?;
    conn.execute_batch(&format!("PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;"))
        .map_err(|e| StoreError::Database(format!("cannot use SQLite database {}: {e}", path.display())))?;
    Ok(conn)
}

const EVENT_COLUMNS: &str =
    "position, event_id, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at";

fn event_row(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
}

type RawEvent = (i64, String, String, i64, String, i64, String, String, i64);

fn decode_event(raw: RawEvent) -> Result<RecordedEvent, StoreError> {
    let (pos, id, stream_id, version, event_type, schema, data, metadata, at) = raw;
    Ok(RecordedEvent {
        position: Position::new(0, pos as u64),
        event_id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(format!("event id {id}: {e}")))?,
        stream_id,
        stream_version: version as u64,
        event_type,
        schema_version: schema as u32,
        data: json(data)?,
        metadata: json(metadata)?,
        recorded_at: from_micros(at)?,
    })
}

fn query_events(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let raws = stmt.query_map(args, event_row)?.collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(decode_event).collect()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its folder, with the default busy
    /// timeout ([`crate::Timeouts::DEFAULT`]'s call bound).
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        SqliteStore::open_with(path, durability, crate::Timeouts::DEFAULT.call)
    }

    /// [`SqliteStore::open`] waiting at most `busy` for a lock another process holds.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability, busy: Duration) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("cannot create folder {}: {e}", dir.display())))?;
        }
        let writer = open_connection(&path, durability, busy)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                durability,
                busy,
                writer: Mutex::new(writer),
                pending: Mutex::new(Vec::new()),
                readers: Mutex::new(Vec::new()),
                commits: watch::channel(0).0,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Takes a lock file next to the database, held as long as the returned file lives.
    /// `serve` holds it so that two servers never share one file.
    pub fn lock_exclusive(&self, what: &str) -> Result<File, StoreError> {
        lock_file(&self.inner.path, what, "serve")
    }

    /// Runs `f` on the single writer connection, off the async runtime.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::db(format!("writer task failed: {e}")))?
    }

    /// Runs `f` on a pooled reader connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path, inner.durability, inner.busy)?,
            };
            let result = f(&conn);
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < 8 {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::db(format!("reader task failed: {e}")))?
    }

    fn notify(&self) {
        self.inner.commits.send_modify(|n| *n += 1);
    }

    /// Applies the embedded migrations that are missing; returns those applied.
    pub async fn migrate(&self) -> Result<Vec<&'static Migration>, StoreError> {
        self.write(migrate::sqlite_apply).await
    }

    /// Refuses a database whose schema is newer than this binary.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        self.read(migrate::sqlite_check).await
    }
}

/// A lock file `<db>.<suffix>.lock` held by the returned handle.
fn lock_file(db: &Path, what: &str, suffix: &str) -> Result<File, StoreError> {
    let mut name = db.as_os_str().to_os_string();
    name.push(format!(".{suffix}.lock"));
    let path = PathBuf::from(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Database(format!("cannot create lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Busy(format!(
            "{} is already in use by another livechat process ({what} needs it alone); stop that process first",
            db.display()
        ))),
        Err(TryLockError::Error(e)) => Err(StoreError::db(format!("cannot lock {}: {e}", path.display()))),
    }
}

fn stored_ids(conn: &Connection, events: &[NewEvent]) -> Result<Vec<StoredId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_id, stream_id, stream_version, position, recorded_at FROM events WHERE event_id = ?1",
    )?;
    let mut found = Vec::new();
    for e in events {
        let row = stmt
            .query_row([e.event_id.to_string()], |r| {
                Ok((r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
            })
            .optional()?;
        if let Some((stream_id, version, pos, at)) = row {
            found.push(StoredId {
                event_id: e.event_id,
                stream_id,
                stream_version: version as u64,
                position: Position::new(0, pos as u64),
                recorded_at: from_micros(at)?,
            });
        }
    }
    Ok(found)
}

/// An append waiting for the writer; answered when the transaction carrying it commits.
struct Pending {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    reply: tokio::sync::oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// Group commit: every append waiting when the writer comes free goes into one transaction
/// (one fsync), each inside its own savepoint so that one refused append (wrong expected
/// version, bad id) does not take the others with it. Later appends in the batch see the
/// earlier ones, so two appends to one stream are checked against each other.
fn append_batch(conn: &mut Connection, batch: Vec<Pending>) {
    let mut results = Vec::with_capacity(batch.len());
    let committed = (|| -> Result<(), StoreError> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for p in &batch {
            let mut sp = tx.savepoint()?;
            let result = append_one(&sp, &p.stream, p.expected, &p.events);
            if result.is_ok() {
                sp.commit()?;
            } else {
                sp.rollback()?;
            }
            results.push(result);
        }
        tx.commit()?;
        Ok(())
    })();
    match committed {
        Ok(()) => {
            for (p, r) in batch.into_iter().zip(results) {
                let _ = p.reply.send(r);
            }
        }
        Err(e) => {
            for p in batch {
                let _ = p.reply.send(Err(StoreError::db(format!("commit failed: {e}"))));
            }
        }
    }
}

/// One append inside the writer's transaction.
fn append_one(
    tx: &Connection,
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    let found = stored_ids(tx, events)?;
    if !found.is_empty() {
        return idempotent_result(stream, expected, events, &found);
    }
    let actual: Option<i64> = tx
        .prepare_cached("SELECT max(stream_version) FROM events WHERE stream_id = ?1")?
        .query_row([stream], |r| r.get(0))?;
    let actual = actual.map(|v| v as u64);
    if !expected.admits(actual) {
        return Err(StoreError::WrongExpectedVersion { stream: stream.to_string(), expected, actual });
    }
    let first_version = actual.map_or(0, |v| v + 1);
    let now = store_time(Utc::now());
    let category = category_of(stream);
    let (mut last, mut last_at) = (0, now);
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (i, e) in events.iter().enumerate() {
        last_at = e.recorded_at.map(store_time).unwrap_or(now);
        insert.execute(params![
            e.event_id.to_string(),
            stream,
            (first_version + i as u64) as i64,
            category,
            e.event_type,
            e.schema_version,
            e.data.to_string(),
            e.metadata.to_string(),
            micros(last_at),
        ])?;
        last = tx.last_insert_rowid();
    }
    Ok(AppendResult {
        first_version,
        last_version: first_version + events.len() as u64 - 1,
        position: Position::new(0, last as u64),
        recorded_at: last_at,
    })
}

/// SQL condition and arguments for a global read.
fn read_all_sql(q: &ReadAll) -> (String, Vec<Box<dyn ToSql + Send>>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql + Send>> = Vec::new();
    let bound = |p: Position| if p.tx > 0 { i64::MAX } else { p.pos.min(i64::MAX as u64) as i64 };
    match (q.direction, q.from) {
        (Direction::Forward, from) => {
            let after = from.unwrap_or(Position::START);
            // A position with tx > 0 lies after every SQLite position.
            conds.push(format!("position > ?{}", args.len() + 1));
            args.push(Box::new(if after.tx > 0 { i64::MAX } else { bound(after) }));
        }
        (Direction::Backward, Some(before)) => {
            conds.push(format!("position < ?{}", args.len() + 1));
            args.push(Box::new(bound(before)));
        }
        (Direction::Backward, None) => {}
    }
    if let Some(s) = &q.filter.stream {
        conds.push(format!("stream_id = ?{}", args.len() + 1));
        args.push(Box::new(s.clone()));
    }
    if let Some(c) = &q.filter.category {
        conds.push(format!("category = ?{}", args.len() + 1));
        args.push(Box::new(c.clone()));
    }
    if !q.filter.event_types.is_empty() {
        let marks: Vec<String> =
            q.filter.event_types.iter().enumerate().map(|(i, _)| format!("?{}", args.len() + 1 + i)).collect();
        conds.push(format!("event_type IN ({})", marks.join(", ")));
        for t in &q.filter.event_types {
            args.push(Box::new(t.clone()));
        }
    }
    let order = match q.direction {
        Direction::Forward => "ASC",
        Direction::Backward => "DESC",
    };
    let wher = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events {wher} ORDER BY position {order} LIMIT {}",
        q.limit.min(i64::MAX as usize)
    );
    (sql, args)
}

#[async_trait]
impl EventStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = Pending { stream: stream.to_string(), expected, events, reply };
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner()).push(pending);
        // Whoever gets the writer first commits everything queued by then, this append
        // included; a turn that finds the queue empty has nothing left to do.
        let inner = self.inner.clone();
        self.write(move |c| {
            let batch = std::mem::take(&mut *inner.pending.lock().unwrap_or_else(|p| p.into_inner()));
            if !batch.is_empty() {
                append_batch(c, batch);
            }
            Ok(())
        })
        .await?;
        let result = answer.await.map_err(|_| StoreError::db("the writer dropped an append"))??;
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
        let stream = stream.to_string();
        let from = from_version.min(i64::MAX as u64) as i64;
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(move |c| {
            let sql = match direction {
                Direction::Forward => format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version LIMIT ?3"
                ),
                Direction::Backward => format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version <= ?2 ORDER BY stream_version DESC LIMIT ?3"
                ),
            };
            query_events(c, &sql, &[&stream, &from, &limit])
        })
        .await
    }

    async fn read_all(&self, q: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let (sql, args) = read_all_sql(q);
        self.read(move |c| {
            let refs: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref() as &dyn ToSql).collect();
            query_events(c, &sql, &refs)
        })
        .await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let stream = stream.to_string();
        self.read(move |c| {
            let v: Option<i64> = c
                .prepare_cached("SELECT max(stream_version) FROM events WHERE stream_id = ?1")?
                .query_row([stream], |r| r.get(0))?;
            Ok(v.map(|v| v as u64))
        })
        .await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.read(|c| {
            let p: Option<i64> = c.prepare_cached("SELECT max(position) FROM events")?.query_row([], |r| r.get(0))?;
            Ok(p.map(|p| Position::new(0, p as u64)))
        })
        .await
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError> {
        let after = if after.tx > 0 { i64::MAX } else { after.pos.min(i64::MAX as u64) as i64 };
        let cap = cap.min(i64::MAX as u64) as i64;
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM events WHERE position > ?1 LIMIT ?2)")?
                .query_row([after, cap], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }
}

fn doc_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn decode_doc(raw: (String, String, String, String, String, i64)) -> Result<Doc, StoreError> {
    let (view, id, partition, sort_key, body, version) = raw;
    Ok(Doc { view, id, partition, sort_key, body: json(body)?, version: version as u64 })
}

const DOC_COLUMNS: &str = "view, id, partition, sort_key, body, version";

fn state_row(conn: &Connection, projector: &str) -> Result<Option<ProjectorState>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT position_tx, position_pos, projector_version, last_event_at, updated_at, heartbeat_at,
                    (SELECT count(*) FROM parked_events p WHERE p.projector = c.projector), last_error, last_error_at
             FROM projector_checkpoints c WHERE projector = ?1",
        )?
        .query_row([projector], |r| {
            Ok((
                (r.get::<_, i64>(0)?, r.get::<_, i64>(1)?),
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                (r.get::<_, Option<String>>(7)?, r.get::<_, Option<i64>>(8)?),
            ))
        })
        .optional()?;
    row.map(|((tx, pos), version, last, updated, heartbeat, parked, (error, error_at))| {
        Ok(ProjectorState {
            projector: projector.to_string(),
            position: Position::new(tx as u64, pos as u64),
            projector_version: version as u32,
            last_event_at: last.map(from_micros).transpose()?,
            updated_at: from_micros(updated)?,
            heartbeat_at: from_micros(heartbeat)?,
            parked: parked as u64,
            last_error: error,
            last_error_at: error_at.map(from_micros).transpose()?,
        })
    })
    .transpose()
}

/// Runs a view write without waiting for the disk: views are rebuilt from the log, and the
/// checkpoint commits with them, so a power loss only makes projectors redo their last
/// batches. The next durable append syncs the write-ahead log, these frames included.
fn relaxed<T>(
    conn: &mut Connection,
    durability: Durability,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if durability == Durability::Normal {
        return f(conn);
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let result = f(conn);
    conn.pragma_update(None, "synchronous", "FULL")?;
    result
}

fn commit_tx(conn: &mut Connection, c: &Commit) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO view_docs (view, id, partition, sort_key, body, version) VALUES (?1, ?2, ?3, ?4, ?5, 1)
             ON CONFLICT (view, id) DO UPDATE SET partition = excluded.partition, sort_key = excluded.sort_key,
                 body = excluded.body, version = view_docs.version + 1",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM view_docs WHERE view = ?1 AND id = ?2")?;
        for change in &c.changes {
            match change {
                DocChange::Put { view, id, partition, sort_key, body } => {
                    put.execute(params![view, id, partition, sort_key, body.to_string()])?;
                }
                DocChange::Delete { view, id } => {
                    delete.execute(params![view, id])?;
                }
            }
        }
        let mut park = tx.prepare_cached(
            "INSERT OR REPLACE INTO parked_events (projector, position_tx, position_pos, event_id, stream_id, stream_version,
                 event_type, error, attempts, parked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for p in &c.parked {
            park.execute(params![
                p.projector,
                p.position.tx as i64,
                p.position.pos as i64,
                p.event_id.to_string(),
                p.stream_id,
                p.stream_version as i64,
                p.event_type,
                p.error,
                p.attempts,
                micros(p.parked_at),
            ])?;
        }
    }
    // The checkpoint last, and only from where the runner started: if it moved, returning
    // drops the transaction and the documents written above with it.
    let now = micros(c.now);
    let moved = match c.expected {
        Some(p) => tx
            .prepare_cached(
                "UPDATE projector_checkpoints SET position_tx = ?2, position_pos = ?3, projector_version = ?4,
                     last_event_at = coalesce(?5, last_event_at), updated_at = ?6, heartbeat_at = ?6,
                     last_error = NULL, last_error_at = NULL
                 WHERE projector = ?1 AND position_tx = ?7 AND position_pos = ?8",
            )?
            .execute(params![
                c.projector,
                c.checkpoint.tx as i64,
                c.checkpoint.pos as i64,
                c.projector_version,
                c.last_event_at.map(micros),
                now,
                p.tx as i64,
                p.pos as i64
            ])?,
        None => tx
            .prepare_cached(
                "INSERT INTO projector_checkpoints (projector, position_tx, position_pos, projector_version,
                     last_event_at, updated_at, heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (projector) DO NOTHING",
            )?
            .execute(params![
                c.projector,
                c.checkpoint.tx as i64,
                c.checkpoint.pos as i64,
                c.projector_version,
                c.last_event_at.map(micros),
                now
            ])?,
    };
    if moved == 0 {
        let current = tx
            .prepare_cached("SELECT position_tx, position_pos FROM projector_checkpoints WHERE projector = ?1")?
            .query_row([&c.projector], |r| Ok(Position::new(r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))
            .optional()?;
        return Err(StoreError::Busy(format!(
            "checkpoint of '{}' moved (expected {:?}, found {:?}): another runner is active",
            c.projector, c.expected, current
        )));
    }
    tx.commit()?;
    Ok(())
}

/// projector, tx, pos, event id, stream, version, type, error, attempts, parked at.
type RawParked = (String, i64, i64, String, String, i64, String, String, u32, i64);

fn parked_row(r: &Row<'_>) -> rusqlite::Result<RawParked> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

#[async_trait]
impl ViewStore for SqliteStore {
    async fn get(&self, view: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        check_lookup([view, id])?;
        let (view, id) = (view.to_string(), id.to_string());
        self.read(move |c| {
            let raw = c
                .prepare_cached(&format!("SELECT {DOC_COLUMNS} FROM view_docs WHERE view = ?1 AND id = ?2"))?
                .query_row([view, id], doc_row)
                .optional()?;
            raw.map(decode_doc).transpose()
        })
        .await
    }

    async fn get_many(&self, view: &str, ids: &[String]) -> Result<Vec<Doc>, StoreError> {
        check_lookup(std::iter::once(view).chain(ids.iter().map(String::as_str)))?;
        let view = view.to_string();
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {DOC_COLUMNS} FROM view_docs WHERE view = ?1 AND id = ?2"))?;
            let mut docs = Vec::new();
            for id in ids {
                if let Some(raw) = stmt.query_row([&view, &id], doc_row).optional()? {
                    docs.push(decode_doc(raw)?);
                }
            }
            Ok(docs)
        })
        .await
    }

    async fn list(
        &self,
        view: &str,
        partition: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        check_lookup([Some(view), partition, after.map(|a| a.0), after.map(|a| a.1)].into_iter().flatten())?;
        let mut conds = vec!["view = ?1".to_string()];
        let mut args: Vec<String> = vec![view.to_string()];
        if let Some(p) = partition {
            args.push(p.to_string());
            conds.push(format!("partition = ?{}", args.len()));
        }
        if let Some((s, i)) = after {
            args.push(s.to_string());
            args.push(i.to_string());
            conds.push(format!("(sort_key, id) > (?{}, ?{})", args.len() - 1, args.len()));
        }
        let sql = format!(
            "SELECT {DOC_COLUMNS} FROM view_docs WHERE {} ORDER BY sort_key, id LIMIT {}",
            conds.join(" AND "),
            limit.min(i64::MAX as usize)
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let raws = stmt.query_map(params_from_iter(args.iter()), doc_row)?.collect::<Result<Vec<_>, _>>()?;
            raws.into_iter().map(decode_doc).collect()
        })
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        check_commit(&commit)?;
        let durability = self.inner.durability;
        self.write(move |c| relaxed(c, durability, |c| commit_tx(c, &commit))).await
    }

    async fn projector_state(&self, projector: &str) -> Result<Option<ProjectorState>, StoreError> {
        let projector = projector.to_string();
        self.read(move |c| state_row(c, &projector)).await
    }

    async fn record_error(&self, projector: &str, error: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (projector, error) = (projector.to_string(), printable(error));
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE projector_checkpoints SET last_error = ?2, last_error_at = ?3 WHERE projector = ?1",
            )?
            .execute(params![projector, error, micros(at)])?;
            Ok(())
        })
        .await
    }

    async fn heartbeat(&self, projector: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let projector = projector.to_string();
        self.write(move |c| {
            c.prepare_cached("UPDATE projector_checkpoints SET heartbeat_at = ?2 WHERE projector = ?1")?
                .execute(params![projector, micros(now)])?;
            Ok(())
        })
        .await
    }

    async fn parked(&self, projector: &str, limit: usize) -> Result<Vec<ParkedEvent>, StoreError> {
        let projector = projector.to_string();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT projector, position_tx, position_pos, event_id, stream_id, stream_version, event_type, error, attempts, parked_at
                 FROM parked_events WHERE projector = ?1 ORDER BY position_tx, position_pos LIMIT ?2",
            )?;
            let raws = stmt.query_map(params![projector, limit], parked_row)?.collect::<Result<Vec<_>, _>>()?;
            raws.into_iter()
                .map(|(projector, tx, pos, id, stream_id, version, event_type, error, attempts, at)| {
                    Ok(ParkedEvent {
                        projector,
                        position: Position::new(tx as u64, pos as u64),
                        event_id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        stream_id,
                        stream_version: version as u64,
                        event_type,
                        error,
                        attempts,
                        parked_at: from_micros(at)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn reset(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        let projector = projector.to_string();
        let views: Vec<String> = views.iter().map(|v| v.to_string()).collect();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for v in &views {
                tx.execute("DELETE FROM view_docs WHERE view = ?1", [v])?;
            }
            for table in ["projector_checkpoints", "parked_events"] {
                tx.execute(&format!("DELETE FROM {table} WHERE projector = ?1"), [&projector])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn swap_shadow(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        let projector = projector.to_string();
        let views: Vec<String> = views.iter().map(|v| v.to_string()).collect();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for v in &views {
                tx.execute("DELETE FROM view_docs WHERE view = ?1", [v])?;
                tx.execute("UPDATE view_docs SET view = ?1 WHERE view = ?2", [v, &shadow_name(v)])?;
            }
            let shadow = shadow_name(&projector);
            for table in ["projector_checkpoints", "parked_events"] {
                tx.execute(&format!("DELETE FROM {table} WHERE projector = ?1"), [&projector])?;
                tx.execute(&format!("UPDATE {table} SET projector = ?1 WHERE projector = ?2"), [&projector, &shadow])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn touch(&self, subject: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let subject = subject.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO activity (subject, last_seen) VALUES (?1, ?2)
                 ON CONFLICT (subject) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
            )?
            .execute(params![subject, micros(at)])?;
            Ok(())
        })
        .await
    }

    async fn last_touched(&self, subject: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let subject = subject.to_string();
        self.read(move |c| {
            let at: Option<i64> = c
                .prepare_cached("SELECT last_seen FROM activity WHERE subject = ?1")?
                .query_row([subject], |r| r.get(0))
                .optional()?;
            at.map(from_micros).transpose()
        })
        .await
    }

    async fn try_own(&self, projector: &str) -> Result<Option<Ownership>, StoreError> {
        match lock_file(&self.inner.path, projector, &format!("projector-{projector}")) {
            Ok(file) => Ok(Some(Ownership::new(file, |_| true))),
            Err(StoreError::Busy(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
