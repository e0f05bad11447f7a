//! One reader of the log per node, shared by every WebSocket of that node.
//!
//! Without it, each connection tails the log on its own and every commit wakes every
//! connection into a read of the store. With it, one `Subscription` reads each new batch once
//! and broadcasts it; a connection first catches up on its own from where it starts, then
//! follows the broadcast, skipping what it has already delivered by position. Nothing is
//! lost at the switch: a connection subscribes to the broadcast *before* catching up, so an
//! event is either published after that (and received) or was visible before (and read).

use std::sync::Arc;
use std::time::Duration;

use store::{EventStore, Position, RecordedEvent, StoreError, Subscription};
use tokio::sync::{broadcast, OnceCell};

/// Batches kept for slow receivers before they lag (and catch up by reading again).
const BACKLOG: usize = 256;

/// The node's shared tail of the log.
pub struct Feed {
    tx: broadcast::Sender<Arc<Vec<RecordedEvent>>>,
    started: OnceCell<tokio::task::AbortHandle>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed { tx: broadcast::channel(BACKLOG).0, started: OnceCell::new() }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(task) = self.started.get() {
            task.abort();
        }
    }
}

impl Feed {
    /// Receives every batch read from now on. Starts the node's reader on first use, from the
    /// head of the log as it is then (everything up to it is readable by the caller).
    pub async fn subscribe(
        &self,
        events: Arc<dyn EventStore>,
        poll: Duration,
    ) -> Result<broadcast::Receiver<Arc<Vec<RecordedEvent>>>, StoreError> {
        let rx = self.tx.subscribe();
        self.started
            .get_or_try_init(|| async {
                let head = events.head().await?.unwrap_or(Position::START);
                let tx = self.tx.clone();
                let mut subscription = Subscription::new(events, head, Default::default()).poll_interval(poll);
                let task = tokio::spawn(async move {
                    loop {
                        match subscription.next_batch().await {
                            // No receiver is fine: nobody is connected right now.
                            Ok(batch) => {
                                let _ = tx.send(Arc::new(batch));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "the node's log reader failed; retrying");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                });
                Ok::<_, StoreError>(task.abort_handle())
            })
            .await?;
        Ok(rx)
    }
}
