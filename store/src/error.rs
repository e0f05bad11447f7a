//! Errors of the store layer.

use uuid::Uuid;

use crate::event::ExpectedVersion;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the expected version (HTTP 409).
    #[error("wrong expected version on '{stream}': expected {expected:?}, actual {actual:?}")]
    WrongExpectedVersion { stream: String, expected: ExpectedVersion, actual: Option<u64> },
    /// An event id is already stored somewhere else (HTTP 409).
    #[error("event id {event_id} is already stored at another place")]
    DuplicateEventId { event_id: Uuid },
    /// The caller asked for something the store cannot do (HTTP 400/422).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The stored schema is newer than this binary.
    #[error("the database schema is at version {found}, newer than this binary knows ({known}); upgrade livechat before using this database")]
    SchemaTooNew { found: i64, known: i64 },
    /// Another process holds what this one needs exclusively.
    #[error("{0}")]
    Busy(String),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database refused the data written (PostgreSQL SQLSTATE class 22 data exception,
    /// 23 integrity violation or 54 program limit; SQLite constraint, too big, mismatch).
    /// Writing the same data again fails again, unlike a [`StoreError::Database`] failure.
    #[error("the database refused the data: {0}")]
    Rejected(String),
    /// The database could not be reached or failed (HTTP 503/500).
    #[error("database error: {0}")]
    Database(String),
    /// The store did not answer `op` within its bound (`crate::Timeouts`). A write that
    /// timed out may still commit (`outcome_unknown`: the statement may have reached the
    /// database); a read, or a write that never got a connection, wrote nothing.
    #[error("the store did not answer {op} within {} ms{}", after.as_millis(),
        if *outcome_unknown { " (it may still have been applied)" } else { " (nothing was written)" })]
    Timeout { op: &'static str, after: std::time::Duration, outcome_unknown: bool },
}

impl StoreError {
    pub fn db(e: impl std::fmt::Display) -> Self {
        StoreError::Database(e.to_string())
    }

    /// The error is about what was written, not about the database: retrying the same write
    /// cannot succeed, leaving out the data at fault can.
    pub fn is_about_data(&self) -> bool {
        matches!(self, StoreError::Invalid(_) | StoreError::Rejected(_))
    }

    /// A write that failed this way may have been applied all the same.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, StoreError::Timeout { outcome_unknown: true, .. })
    }
}

/// An error and its causes, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{ConstraintViolation, TooBig, TypeMismatch};
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, ConstraintViolation | TooBig | TypeMismatch) => {
                StoreError::Rejected(e.to_string())
            }
            rusqlite::Error::ToSqlConversionFailure(_) => StoreError::Rejected(e.to_string()),
            _ => StoreError::db(e),
        }
    }
}

/// `CODE: message` for a server error, otherwise the error with its causes (tokio-postgres
/// prints only "error connecting to server" and keeps the reason in `source()`).
pub(crate) fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => chain(e),
    }
}

/// SQLSTATE classes about the data a statement carries: 22 data exception (e.g. NUL in
/// text, `\u0000` in jsonb), 23 integrity constraint violation, 54 program limit exceeded
/// (e.g. an index row too big). Anything else (connection, I/O, resources) may pass.
fn refuses_data(code: &str) -> bool {
    ["22", "23", "54"].iter().any(|class| code.starts_with(class))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if refuses_data(db.code().code()) => StoreError::Rejected(describe_pg(&e)),
            _ => StoreError::Database(describe_pg(&e)),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    /// Pool timeouts are mapped by the caller, which knows the bounds (`PgStore::client`).
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match &e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Database(describe_pg(e)),
            _ => StoreError::db(e),
        }
    }
}
