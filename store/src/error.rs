//! Errors of the store layer.

use uuid::Uuid;

use crate::events::ExpectedVersion;

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
    /// The database could not be reached or failed (HTTP 503/500).
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub fn db(e: impl std::fmt::Display) -> Self {
        StoreError::Database(e.to_string())
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
        StoreError::db(e)
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

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Database(describe_pg(&e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::db(e)
    }
}
