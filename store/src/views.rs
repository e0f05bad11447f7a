//! Documents that projectors write, and the checkpoints they write with them.

use std::any::Any;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{Position, RecordedEvent};

/// A stored read-model document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Doc {
    pub view: String,
    pub id: String,
    /// Groups documents listed together (a channel, a category...).
    pub partition: String,
    /// Order within a listing; ties are broken by `id`.
    pub sort_key: String,
    pub body: Value,
    /// Bumped by the store on every write: 1 for a new document.
    pub version: u64,
}

/// A change a projector asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum DocChange {
    Put { view: String, id: String, partition: String, sort_key: String, body: Value },
    Delete { view: String, id: String },
}

impl DocChange {
    pub fn key(&self) -> (&str, &str) {
        match self {
            DocChange::Put { view, id, .. } | DocChange::Delete { view, id } => (view, id),
        }
    }
}

/// An event a projector could not apply, kept for an operator to look at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParkedEvent {
    pub projector: String,
    pub position: Position,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_type: String,
    pub error: String,
    pub attempts: u32,
    pub parked_at: DateTime<Utc>,
}

impl ParkedEvent {
    pub fn new(projector: &str, event: &RecordedEvent, error: String, attempts: u32, at: DateTime<Utc>) -> Self {
        ParkedEvent {
            projector: projector.to_string(),
            position: event.position,
            event_id: event.event_id,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.clone(),
            error,
            attempts,
            parked_at: crate::event::store_time(at),
        }
    }
}

/// One atomic step of a projector: document changes, parked events and the new checkpoint.
#[derive(Clone, Debug)]
pub struct Commit {
    pub projector: String,
    pub projector_version: u32,
    /// The checkpoint this commit continues from (`None`: the projector has none yet).
    /// A mismatch means another runner moved it: the commit is refused, nothing written.
    pub expected: Option<Position>,
    pub checkpoint: Position,
    pub last_event_at: Option<DateTime<Utc>>,
    pub changes: Vec<DocChange>,
    pub parked: Vec<ParkedEvent>,
    pub now: DateTime<Utc>,
}

/// Where a projector stands, as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProjectorState {
    pub projector: String,
    pub position: Position,
    pub projector_version: u32,
    pub last_event_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub parked: u64,
}

type AliveCheck = Box<dyn Fn(&(dyn Any + Send + Sync)) -> bool + Send + Sync>;

/// Held while this process is the one runner of a projector; dropping it lets go.
pub struct Ownership {
    hold: Box<dyn Any + Send + Sync>,
    alive: AliveCheck,
}

impl Ownership {
    pub fn new<T: Any + Send + Sync>(hold: T, alive: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        Ownership { hold: Box::new(hold), alive: Box::new(move |h| h.downcast_ref::<T>().is_some_and(&alive)) }
    }

    /// False once the ownership was lost (for example the database connection holding it died).
    pub fn is_alive(&self) -> bool {
        (self.alive)(self.hold.as_ref())
    }
}

/// Name under which a projector's shadow copy (during a rebuild) is stored.
pub fn shadow_name(name: &str) -> String {
    format!("{name}~shadow")
}

/// Document storage for read models.
#[async_trait]
pub trait ViewStore: Send + Sync + 'static {
    async fn get(&self, view: &str, id: &str) -> Result<Option<Doc>, StoreError>;

    /// The documents among `ids` that exist, in no particular order.
    async fn get_many(&self, view: &str, ids: &[String]) -> Result<Vec<Doc>, StoreError>;

    /// Documents ordered by `(sort_key, id)`, strictly after `after`, optionally in one partition.
    async fn list(
        &self,
        view: &str,
        partition: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError>;

    /// Writes changes, parked events and the checkpoint in one transaction, or nothing.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    async fn projector_state(&self, projector: &str) -> Result<Option<ProjectorState>, StoreError>;

    /// Records that the runner is alive even when it has nothing to do.
    async fn heartbeat(&self, projector: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    async fn parked(&self, projector: &str, limit: usize) -> Result<Vec<ParkedEvent>, StoreError>;

    /// Removes the projector's documents in `views`, its checkpoint and parked events.
    async fn reset(&self, projector: &str, views: &[&str]) -> Result<(), StoreError>;

    /// Replaces the projector's live documents, checkpoint and parked events with its
    /// shadow copy, in one transaction.
    async fn swap_shadow(&self, projector: &str, views: &[&str]) -> Result<(), StoreError>;

    /// Becomes the single runner of `projector` across processes, or `None` if another holds it.
    async fn try_own(&self, projector: &str) -> Result<Option<Ownership>, StoreError>;

    /// Records that `subject` was active at `at` (an earlier time never overwrites a later one).
    async fn touch(&self, subject: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// When `subject` was last active, if ever.
    async fn last_touched(&self, subject: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Every document of `view` (optionally in one partition), in listing order, page by page.
/// For views that stay small (channels, users); large views should be paged by the caller.
pub async fn list_all(views: &dyn ViewStore, view: &str, partition: Option<&str>) -> Result<Vec<Doc>, StoreError> {
    let mut all: Vec<Doc> = Vec::new();
    loop {
        let after = all.last().map(|d| (d.sort_key.clone(), d.id.clone()));
        let page = views.list(view, partition, after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 500).await?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}
