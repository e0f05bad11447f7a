//! PostgreSQL backend (see the module docs once written).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{NewEvent, Position, RecordedEvent};
use crate::events::{AppendResult, Backend, Direction, EventStore, ExpectedVersion, ReadAll};
use crate::migrate::Migration;
use crate::views::{Commit, Doc, Ownership, ParkedEvent, ProjectorState, ViewStore};

/// Event store and view store over a PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    commits: watch::Sender<u64>,
}

impl PgStore {
    pub async fn connect(_url: &str) -> Result<Self, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    pub async fn migrate(&self) -> Result<Vec<&'static Migration>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
}

#[async_trait]
impl EventStore for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }
    async fn append(&self, _: &str, _: ExpectedVersion, _: Vec<NewEvent>) -> Result<AppendResult, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn read_stream(&self, _: &str, _: u64, _: Direction, _: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn read_all(&self, _: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn stream_version(&self, _: &str) -> Result<Option<u64>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn count_after(&self, _: Position, _: u64) -> Result<u64, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

#[async_trait]
impl ViewStore for PgStore {
    async fn get(&self, _: &str, _: &str) -> Result<Option<Doc>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn get_many(&self, _: &str, _: &[String]) -> Result<Vec<Doc>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn list(&self, _: &str, _: Option<&str>, _: Option<(&str, &str)>, _: usize) -> Result<Vec<Doc>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn commit(&self, _: Commit) -> Result<(), StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn projector_state(&self, _: &str) -> Result<Option<ProjectorState>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn heartbeat(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn parked(&self, _: &str, _: usize) -> Result<Vec<ParkedEvent>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn reset(&self, _: &str, _: &[&str]) -> Result<(), StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn swap_shadow(&self, _: &str, _: &[&str]) -> Result<(), StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
    async fn try_own(&self, _: &str) -> Result<Option<Ownership>, StoreError> {
        Err(StoreError::Invalid("PostgreSQL backend not built yet".into()))
    }
}
