//! Embedded schema migrations, recorded in `schema_migrations`.

use chrono::Utc;
use rusqlite::Connection;

use crate::error::StoreError;

/// One embedded SQL file.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "events", sql: include_str!("../../migrations/sqlite/0001_events.sql") },
    Migration { version: 2, name: "views", sql: include_str!("../../migrations/sqlite/0002_views.sql") },
    Migration { version: 3, name: "activity", sql: include_str!("../../migrations/sqlite/0003_activity.sql") },
    Migration {
        version: 4,
        name: "projector_errors",
        sql: include_str!("../../migrations/sqlite/0004_projector_errors.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "events", sql: include_str!("../../migrations/postgres/0001_events.sql") },
    Migration { version: 2, name: "views", sql: include_str!("../../migrations/postgres/0002_views.sql") },
    Migration { version: 3, name: "activity", sql: include_str!("../../migrations/postgres/0003_activity.sql") },
    Migration {
        version: 4,
        name: "projector_errors",
        sql: include_str!("../../migrations/postgres/0004_projector_errors.sql"),
    },
    // PostgreSQL only: its horizon needs appenders to announce themselves.
    Migration { version: 5, name: "append_lock", sql: include_str!("../../migrations/postgres/0005_append_lock.sql") },
];

/// Highest version this binary knows.
pub fn latest(set: &[Migration]) -> i64 {
    set.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The migrations of `set` above `current`, refusing a database newer than the binary.
pub fn pending(set: &'static [Migration], current: i64) -> Result<Vec<&'static Migration>, StoreError> {
    let known = latest(set);
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    Ok(set.iter().filter(|m| m.version > current).collect())
}

const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

fn sqlite_current(conn: &Connection) -> Result<i64, StoreError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    Ok(conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
}

pub(crate) fn sqlite_apply(conn: &mut Connection) -> Result<Vec<&'static Migration>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(SQLITE_TABLE)?;
    let todo = pending(SQLITE, sqlite_current(&tx)?)?;
    for m in &todo {
        tx.execute_batch(m.sql)
            .map_err(|e| StoreError::Database(format!("migration {} ({}) failed: {e}", m.version, m.name)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, Utc::now().to_rfc3339()],
        )?;
    }
    tx.commit()?;
    Ok(todo)
}

pub(crate) fn sqlite_check(conn: &Connection) -> Result<(), StoreError> {
    require_current(SQLITE, sqlite_current(conn)?)
}

/// Accepts exactly the schema this binary knows: newer is `SchemaTooNew`, older asks for
/// `livechat migrate`.
pub fn require_current(set: &'static [Migration], current: i64) -> Result<(), StoreError> {
    match pending(set, current)? {
        todo if todo.is_empty() => Ok(()),
        _ => Err(StoreError::Invalid(format!(
            "the database schema is at version {current}, this binary needs {}: run `livechat migrate`",
            latest(set)
        ))),
    }
}
