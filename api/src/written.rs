//! Every request that writes answers with `X-Livechat-Position`: the position of the last
//! event it appended, which a client passes as `min_position` to read its own write.
//!
//! Handlers that know their write's position mark the response themselves
//! (`commanding::mark_position`). For all the others, the node's event store is wrapped so
//! that each append made while serving a request records its position in a task-local
//! slot, and a middleware puts the highest one on the response. A write added tomorrow
//! gets the header without anyone remembering to set it.

use std::cell::Cell;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::HeaderValue;
use store::{
    AppendResult, Backend, Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadAll, RecordedEvent,
    StoreError,
};
use tokio::sync::watch;

/// Header carrying the log position a write produced, for `min_position` reads.
pub const POSITION_HEADER: &str = "x-livechat-position";

tokio::task_local! {
    /// The highest position appended while serving the current request.
    static WRITTEN: Cell<Option<Position>>;
}

fn record(position: Position) {
    // Outside a request (workers, tests calling the store) there is no slot: nothing to do.
    let _ = WRITTEN.try_with(|w| w.set(Some(w.get().map_or(position, |p| p.max(position)))));
}

/// An event store that records the positions of its appends for [`mark_written`].
pub struct Recording(Arc<dyn EventStore>);

impl Recording {
    pub fn wrap(inner: Arc<dyn EventStore>) -> Arc<dyn EventStore> {
        Arc::new(Recording(inner))
    }
}

#[async_trait]
impl EventStore for Recording {
    fn backend(&self) -> Backend {
        self.0.backend()
    }

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let result = self.0.append(stream, expected, events).await?;
        record(result.position);
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(stream, from_version, direction, limit).await
    }

    async fn read_all(&self, query: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_all(query).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        self.0.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.0.head().await
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError> {
        self.0.count_after(after, cap).await
    }

    async fn horizon_age(&self) -> Result<Option<f64>, StoreError> {
        self.0.horizon_age().await
    }

    async fn notify_others(&self, payload: &str) -> Result<(), StoreError> {
        self.0.notify_others(payload).await
    }

    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.0.notices()
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.0.commits()
    }
}

/// Serves the request with a fresh slot, then marks the response with the highest position
/// it appended, unless the handler already did.
pub async fn mark_written(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let (mut res, written) = WRITTEN
        .scope(Cell::new(None), async move {
            let res = next.run(req).await;
            (res, WRITTEN.with(Cell::get))
        })
        .await;
    if let Some(v) = written.and_then(|p| HeaderValue::from_str(&p.to_string()).ok()) {
        res.headers_mut().entry(POSITION_HEADER).or_insert(v);
    }
    res
}
