//! The event store contract (ARCHITECTURE.md section 3), shared by every backend.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::StoreError;
pub use crate::event::ExpectedVersion;
use crate::event::{NewEvent, Position, RecordedEvent};
use chrono::{DateTime, Utc};

/// What an append produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// Version of the first appended event.
    pub first_version: u64,
    /// Version of the last appended event: the `Exact` to expect next.
    pub last_version: u64,
    /// Position of the last appended event (for read-your-writes).
    pub position: Position,
    /// When the last appended event was recorded (what reads will show).
    pub recorded_at: DateTime<Utc>,
}

/// Every event of `stream` from `from_version` on, read in pages.
pub async fn read_whole_stream(
    events: &dyn EventStore,
    stream: &str,
    from_version: u64,
) -> Result<Vec<crate::RecordedEvent>, StoreError> {
    const PAGE: usize = 1000;
    let (mut out, mut from) = (Vec::new(), from_version);
    loop {
        let page = events.read_stream(stream, from, Direction::Forward, PAGE).await?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            from = last.stream_version + 1;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// Direction of a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Forward,
    Backward,
}

/// Which events of the global log a read returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub stream: Option<String>,
    pub category: Option<String>,
    pub event_types: Vec<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &RecordedEvent) -> bool {
        self.stream.as_deref().is_none_or(|s| s == e.stream_id)
            && self.category.as_deref().is_none_or(|c| c == e.category())
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
    }
}

/// A page of the global log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadAll {
    /// Forward: events strictly after this position. Backward: strictly before it
    /// (`None` backward means from the newest visible event).
    pub from: Option<Position>,
    pub direction: Direction,
    pub limit: usize,
    pub filter: EventFilter,
}

impl ReadAll {
    /// Forward from after `from`, no filter.
    pub fn forward(from: Position, limit: usize) -> Self {
        ReadAll { from: Some(from), direction: Direction::Forward, limit, filter: EventFilter::default() }
    }
}

/// Identity of a backend, shown by status commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// Append-only log of streams of events.
///
/// Every backend passes the same conformance suite (`testkit::conformance`).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Appends `events` to `stream` atomically if `expected` holds. Idempotent by event id:
    /// re-appending the same ids to the same stream at the same versions returns the
    /// original result; the same ids anywhere else is [`StoreError::DuplicateEventId`].
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Events of one stream. Forward: versions `>= from_version`; backward: `<= from_version`
    /// (`u64::MAX` for the newest).
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// A page of the global log in position order, only ever events whose position can
    /// no longer be preceded by a commit still in flight.
    async fn read_all(&self, query: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Last version of a stream, `None` when it has no events.
    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError>;

    /// Position of the newest visible event, `None` on an empty store.
    async fn head(&self) -> Result<Option<Position>, StoreError>;

    /// Number of visible events strictly after `after`, counting at most `cap`.
    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError>;

    /// How long, in seconds, the oldest write transaction still running has been holding back
    /// what global reads can see. Only PostgreSQL has such a horizon (and it is cluster-wide:
    /// a transaction in another database counts); elsewhere `None`.
    async fn horizon_age(&self) -> Result<Option<f64>, StoreError> {
        Ok(None)
    }

    /// Sends an ephemeral notice, never stored, to every process sharing this store
    /// (PostgreSQL `NOTIFY`, at most 8,000 bytes). The embedded stores serve one process:
    /// nothing to do there.
    async fn notify_others(&self, _payload: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Notices sent by the processes sharing this store (this one's included), or `None`
    /// where a store serves one process only. Best effort: one sent while the listener
    /// reconnects is lost.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// Ticks after every local commit: an in-process wake-up hint for tailing readers.
    /// Readers must still poll: other processes write too.
    fn commits(&self) -> watch::Receiver<u64>;
}

/// Checks every backend applies before touching storage.
pub(crate) fn validate_append(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    if stream.is_empty() || stream.len() > 200 || stream.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(StoreError::Invalid(format!("invalid stream id '{stream}': 1 to 200 characters, no spaces")));
    }
    if events.is_empty() {
        return Err(StoreError::Invalid("an append needs at least one event".into()));
    }
    let mut ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Invalid("the same event id appears twice in one append".into()));
    }
    if let Some(e) = events.iter().find(|e| e.event_type.is_empty()) {
        return Err(StoreError::Invalid(format!("event {} has an empty event type", e.event_id)));
    }
    // PostgreSQL cannot store NUL in text or jsonb; refuse it everywhere so that a log can
    // move between backends.
    if let Some(e) = events.iter().find(|e| e.event_type.contains('\0') || has_nul(&e.data) || has_nul(&e.metadata)) {
        return Err(StoreError::Invalid(format!("event {} contains a NUL character (\\u0000)", e.event_id)));
    }
    Ok(())
}

pub(crate) fn has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// An event id already in the store: where it is.
#[derive(Clone, Debug)]
pub(crate) struct StoredId {
    pub event_id: uuid::Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub position: Position,
    pub recorded_at: DateTime<Utc>,
}

/// Decides a retried append: the original result when every id sits, in order, in the same
/// stream at consecutive versions the expectation allows; otherwise a conflict.
pub(crate) fn idempotent_result(
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    found: &[StoredId],
) -> Result<AppendResult, StoreError> {
    let place = |id| found.iter().find(|f| f.event_id == id);
    let first = place(events[0].event_id);
    let conflict = || StoreError::DuplicateEventId {
        event_id: events
            .iter()
            .map(|e| e.event_id)
            .find(|id| found.iter().any(|f| f.event_id == *id))
            .unwrap_or(events[0].event_id),
    };
    let Some(first) = first else { return Err(conflict()) };
    if first.stream_id != stream || expected.first_version().is_some_and(|v| v != first.stream_version) {
        return Err(conflict());
    }
    let mut last = first;
    for (i, e) in events.iter().enumerate() {
        match place(e.event_id) {
            Some(f) if f.stream_id == stream && f.stream_version == first.stream_version + i as u64 => last = f,
            _ => return Err(conflict()),
        }
    }
    Ok(AppendResult {
        first_version: first.stream_version,
        last_version: last.stream_version,
        position: last.position,
        recorded_at: last.recorded_at,
    })
}
