//! Catch-up-then-tail subscriptions over any [`EventStore`].
//!
//! One mechanism for every backend: read pages above the last delivered position; when a page
//! comes back empty, wait for a local commit or the poll interval, then read again. Because
//! every backend only returns events that can no longer be preceded by a commit in flight,
//! there is no gap, duplicate or reordering at the catch-up/live boundary: there is no
//! boundary, only the same read repeated.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{Position, RecordedEvent};
use crate::events::{EventFilter, EventStore, ReadAll};

/// Live reader of the global log from a position.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    after: Position,
    filter: EventFilter,
    batch: usize,
    poll: Duration,
    buffer: VecDeque<RecordedEvent>,
    commits: watch::Receiver<u64>,
}

impl Subscription {
    /// Delivers every event after `after` matching `filter`, then every new one.
    pub fn new(store: Arc<dyn EventStore>, after: Position, filter: EventFilter) -> Self {
        let commits = store.commits();
        Subscription {
            store,
            after,
            filter,
            batch: 500,
            poll: Duration::from_millis(250),
            buffer: VecDeque::new(),
            commits,
        }
    }

    /// How often to look for commits made by other processes.
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub fn batch_size(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Position of the last event delivered (or the starting point).
    pub fn position(&self) -> Position {
        self.after
    }

    /// The next page of events, waiting for one if there is none. Never empty.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        if !self.buffer.is_empty() {
            let batch: Vec<_> = self.buffer.drain(..).collect();
            return Ok(batch);
        }
        loop {
            // Mark commits seen *before* reading, so a commit during the read wakes us again.
            self.commits.borrow_and_update();
            let query = ReadAll { filter: self.filter.clone(), ..ReadAll::forward(self.after, self.batch) };
            let page = self.store.read_all(&query).await?;
            if let Some(last) = page.last() {
                self.after = last.position;
                return Ok(page);
            }
            let _ = tokio::time::timeout(self.poll, self.commits.changed()).await;
        }
    }

    /// The next event, waiting for one.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        if self.buffer.is_empty() {
            let batch = self.next_batch().await?;
            self.buffer.extend(batch);
        }
        Ok(self.buffer.pop_front().expect("next_batch is never empty"))
    }
}
