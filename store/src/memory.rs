//! In-memory backends: ephemeral (`memory:`), and the reference the others are tested against.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{store_time, NewEvent, Position, RecordedEvent};
use crate::events::{
    idempotent_result, validate_append, AppendResult, Backend, Direction, EventStore, ExpectedVersion, ReadAll,
    StoredId,
};

#[derive(Default)]
struct Log {
    events: Vec<RecordedEvent>,
    streams: HashMap<String, Vec<usize>>,
    ids: HashMap<Uuid, usize>,
}

/// Events in a vector behind a mutex. Positions are `0:n`, gapless from 1.
pub struct MemoryEventStore {
    log: Mutex<Log>,
    commits: watch::Sender<u64>,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        MemoryEventStore { log: Mutex::default(), commits: watch::channel(0).0 }
    }
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave a half-written log: appends push only
        // after every check passed.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_append(stream, &events)?;
        let mut log = self.lock();
        let found: Vec<StoredId> = events
            .iter()
            .filter_map(|e| log.ids.get(&e.event_id))
            .map(|&i| {
                let r = &log.events[i];
                StoredId {
                    event_id: r.event_id,
                    stream_id: r.stream_id.clone(),
                    stream_version: r.stream_version,
                    position: r.position,
                    recorded_at: r.recorded_at,
                }
            })
            .collect();
        if !found.is_empty() {
            return idempotent_result(stream, expected, &events, &found);
        }
        let actual = log.streams.get(stream).map(|v| v.len() as u64 - 1);
        if !expected.admits(actual) {
            return Err(StoreError::WrongExpectedVersion { stream: stream.to_string(), expected, actual });
        }
        let first_version = actual.map_or(0, |v| v + 1);
        let now = store_time(Utc::now());
        for (i, e) in events.into_iter().enumerate() {
            let index = log.events.len();
            log.events.push(RecordedEvent {
                position: Position::new(0, index as u64 + 1),
                event_id: e.event_id,
                stream_id: stream.to_string(),
                stream_version: first_version + i as u64,
                event_type: e.event_type,
                schema_version: e.schema_version,
                data: e.data,
                metadata: e.metadata,
                recorded_at: e.recorded_at.map(store_time).unwrap_or(now),
            });
            log.ids.insert(e.event_id, index);
            log.streams.entry(stream.to_string()).or_default().push(index);
        }
        let last = log.events.last().expect("just appended");
        let result = AppendResult {
            first_version,
            last_version: last.stream_version,
            position: last.position,
            recorded_at: last.recorded_at,
        };
        drop(log);
        self.commits.send_modify(|n| *n += 1);
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock();
        let Some(indexes) = log.streams.get(stream) else { return Ok(vec![]) };
        let pick = |i: &usize| log.events[*i].clone();
        Ok(match direction {
            Direction::Forward => {
                indexes.iter().skip(from_version.min(usize::MAX as u64) as usize).take(limit).map(pick).collect()
            }
            Direction::Backward => {
                let end = (from_version.saturating_add(1)).min(indexes.len() as u64) as usize;
                indexes[..end].iter().rev().take(limit).map(pick).collect()
            }
        })
    }

    async fn read_all(&self, q: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock();
        let keep = |e: &&RecordedEvent| q.filter.matches(e);
        Ok(match q.direction {
            Direction::Forward => {
                let after = q.from.unwrap_or(Position::START);
                let start = log.events.partition_point(|e| e.position <= after);
                log.events[start..].iter().filter(keep).take(q.limit).cloned().collect()
            }
            Direction::Backward => {
                let end = match q.from {
                    Some(before) => log.events.partition_point(|e| e.position < before),
                    None => log.events.len(),
                };
                log.events[..end].iter().rev().filter(keep).take(q.limit).cloned().collect()
            }
        })
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().streams.get(stream).map(|v| v.len() as u64 - 1))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Ok(self.lock().events.last().map(|e| e.position))
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError> {
        let log = self.lock();
        let start = log.events.partition_point(|e| e.position <= after);
        Ok(((log.events.len() - start) as u64).min(cap))
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}
