//! Writes to one stream, one at a time per process: a per-stream async mutex, so that
//! commands racing for a hot stream (a conversation, an operator's slots) on one node queue
//! up instead of colliding and deciding again. Across nodes the expected version still
//! decides and the loser decides again (see [`crate::execute`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

type Slot = Arc<tokio::sync::Mutex<()>>;

/// The per-stream locks of this process; an entry lives while someone holds or awaits it.
#[derive(Default)]
pub struct StreamLocks {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Holds a stream's lock; dropping it lets the next writer of the stream in (first come,
/// first served: tokio's mutex is fair).
pub struct StreamGuard<'a> {
    locks: &'a StreamLocks,
    stream: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl StreamLocks {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the stream's turn.
    pub async fn lock(&self, stream: &str) -> StreamGuard<'_> {
        let slot = self.slots().entry(stream.to_string()).or_default().clone();
        let guard = slot.lock_owned().await;
        StreamGuard { locks: self, stream: stream.to_string(), guard: Some(guard) }
    }

    /// Streams with a holder or a waiter (for tests).
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut slots = self.locks.slots();
        // Only the map holds it: nobody waits, so the entry goes (the map stays small).
        if slots.get(&self.stream).is_some_and(|s| Arc::strong_count(s) == 1) {
            slots.remove(&self.stream);
        }
    }
}

/// The locks every command of this process takes (stream ids are global to a store; two
/// stores in one process, as in tests, merely share a queue for equal names).
pub static LOCKS: LazyLock<StreamLocks> = LazyLock::new(StreamLocks::default);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_of_one_stream_take_turns_and_the_entry_goes_after() {
        let locks = Arc::new(StreamLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, inside) = (locks.clone(), inside.clone());
                tokio::spawn(async move {
                    let _turn = locks.lock("s-1").await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "alone on the stream");
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn other_streams_do_not_wait() {
        let locks = StreamLocks::default();
        let _a = locks.lock("s-1").await;
        let b = tokio::time::timeout(std::time::Duration::from_secs(1), locks.lock("s-2")).await;
        assert!(b.is_ok());
        assert_eq!(locks.len(), 2);
    }
}
