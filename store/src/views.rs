//! Documents that projectors write, and the checkpoints they write with them.

use std::any::Any;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{Position, RecordedEvent};
use crate::events::has_nul;

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
            error: printable(&error),
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
    /// Why the runner's last attempt failed, if it has not committed since.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
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

/// Longest document id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 512;
/// Longest partition, in bytes of UTF-8.
pub const MAX_PARTITION_BYTES: usize = 512;
/// Longest sort key, in bytes of UTF-8 (a title of 100 characters and an id fit).
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// Longest view name, in bytes of UTF-8 (shadow names included).
pub const MAX_VIEW_BYTES: usize = 128;

/// A key or text as an error message may show it: escaped, and cut after 60 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(60).flat_map(char::escape_debug).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    format!("'{out}'")
}

/// An error text that every backend can store: NUL written as `\u0000`.
pub(crate) fn printable(text: &str) -> String {
    text.replace('\0', "\\u0000")
}

fn check_key(view: &str, id: &str, what: &str, value: &str, max: usize) -> Result<(), StoreError> {
    let fault = if value.contains('\0') {
        "contains a NUL character (\\u0000)".to_string()
    } else if value.len() > max {
        format!("is {} bytes long, more than {max}", value.len())
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid(format!("document {}/{}: the {what} {fault}", shown(view), shown(id))))
}

/// The rule every view store applies to a document before writing it, so that all backends
/// hold the same documents: no NUL anywhere (PostgreSQL `text` and `jsonb` cannot store it)
/// and keys short enough for PostgreSQL's indexes (an index entry holds at most ~2,700 bytes:
/// view, partition, sort key and id are indexed together). Any other string round-trips and
/// lists in byte order on every backend.
pub fn check_doc(view: &str, id: &str, partition: &str, sort_key: &str, body: &Value) -> Result<(), StoreError> {
    check_key(view, id, "view name", view, MAX_VIEW_BYTES)?;
    check_key(view, id, "id", id, MAX_ID_BYTES)?;
    check_key(view, id, "partition", partition, MAX_PARTITION_BYTES)?;
    check_key(view, id, "sort key", sort_key, MAX_SORT_KEY_BYTES)?;
    if has_nul(body) {
        return Err(StoreError::Invalid(format!(
            "document {}/{}: the body contains a NUL character (\\u0000)",
            shown(view),
            shown(id)
        )));
    }
    Ok(())
}

/// [`check_doc`] for a deletion: only the keys that name the document.
pub fn check_delete(view: &str, id: &str) -> Result<(), StoreError> {
    check_key(view, id, "view name", view, MAX_VIEW_BYTES)?;
    check_key(view, id, "id", id, MAX_ID_BYTES)
}

/// What every backend checks before it writes any part of a commit.
pub(crate) fn check_commit(c: &Commit) -> Result<(), StoreError> {
    for change in &c.changes {
        match change {
            DocChange::Put { view, id, partition, sort_key, body } => check_doc(view, id, partition, sort_key, body)?,
            DocChange::Delete { view, id } => check_delete(view, id)?,
        }
    }
    let texts = c.parked.iter().flat_map(|p| [&p.projector, &p.stream_id, &p.event_type, &p.error]);
    if std::iter::once(&c.projector).chain(texts).any(|t| t.contains('\0')) {
        return Err(StoreError::Invalid(format!("commit of {}: a parked event contains NUL", shown(&c.projector))));
    }
    Ok(())
}

/// What every backend checks before looking documents up: no stored key contains NUL, and
/// asking for one is a mistake (PostgreSQL could not even be asked).
pub(crate) fn check_lookup<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<(), StoreError> {
    match keys.into_iter().find(|k| k.contains('\0')) {
        Some(k) => Err(StoreError::Invalid(format!("document key {} contains a NUL character (\\u0000)", shown(k)))),
        None => Ok(()),
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
    /// Clears the projector's last error. A document [`check_doc`] refuses is `Invalid`.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    /// Records why the runner of `projector` is failing, kept with its checkpoint until its
    /// next successful commit. A projector without a checkpoint has nowhere to keep it:
    /// nothing is written then.
    async fn record_error(&self, projector: &str, error: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

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
