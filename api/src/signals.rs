//! Ephemeral signals (typing) and what this node's live connections share.
//!
//! A signal is never an event: it is not appended to the log, not replayed by `?from=`, and
//! lost when nobody is connected. The hub is an in-process `tokio::sync::broadcast` channel:
//! every WebSocket connection of this node subscribes and keeps the signals addressed to it.
//!
//! Across nodes (several `serve` on one PostgreSQL), a signal also goes out as a store notice
//! (`NOTIFY`, never inside an append transaction) tagged with the sending node, and every
//! other node's [`relay`] puts it into its own hub.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use domain::session::Party;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::EventStore;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// Signals a hub buffers for a connection that is behind; older ones are dropped.
const BACKLOG: usize = 1024;

/// Whose connections a signal is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipient {
    /// The visitor of the conversation.
    Visitor,
    /// The connections of this operator (or admin).
    Operator { id: Uuid },
}

/// "`party` is (not) typing in `session_id`", addressed to the other party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub session_id: Uuid,
    pub party: Party,
    pub typing: bool,
    pub to: Recipient,
}

/// Limits of the live stream (`GET /api/v1/stream`).
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// Frames waiting to be written to one socket.
    pub queue: usize,
    /// A connection whose queue stays full this long is closed (1008, "slow consumer"):
    /// events wait for room instead of growing memory, but not forever.
    pub slow_after: Duration,
    /// How often the server pings; a connection silent for two intervals is closed.
    pub ping_interval: Duration,
    /// Longest time one frame may take to be written before the connection is dropped.
    pub send_timeout: Duration,
    /// How often an operator's token is checked again (expiry); a change of the user's stream
    /// (revocation, deactivation) is checked at once.
    pub recheck_token: Duration,
    /// How often a connection looks for commits made by other nodes.
    pub poll: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            queue: 1024,
            slow_after: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            recheck_token: Duration::from_secs(60),
            poll: Duration::from_millis(250),
        }
    }
}

/// What the live connections of this node share: typing signals, limits and counters.
pub struct Hub {
    /// Tags this node's notices, so that it skips its own when they come back.
    node: Uuid,
    signals: broadcast::Sender<Signal>,
    settings: StreamSettings,
    open: AtomicUsize,
    slow: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(StreamSettings::default())
    }
}

impl Hub {
    pub fn new(settings: StreamSettings) -> Self {
        let settings = StreamSettings { queue: settings.queue.max(1), ..settings };
        Hub {
            node: Uuid::new_v4(),
            signals: broadcast::channel(BACKLOG).0,
            settings,
            open: AtomicUsize::new(0),
            slow: AtomicU64::new(0),
            shutdown: watch::channel(false).0,
        }
    }

    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Sends a signal to every connection of this node (each keeps those addressed to it).
    pub fn publish(&self, signal: Signal) {
        // No receiver (nobody connected) is not an error: signals are ephemeral.
        let _ = self.signals.send(signal);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }

    /// Counts a live connection until the guard is dropped.
    pub fn connection(&self) -> ConnectionGuard<'_> {
        self.open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self)
    }

    /// Live stream connections on this node.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed because they did not read fast enough, since the start.
    pub fn slow_consumers(&self) -> u64 {
        self.slow.load(Ordering::Relaxed)
    }

    /// Closes every live connection of this node (1001, "reconnect with ?from=..."): the
    /// server calls it when it starts draining, since upgraded connections are not part of
    /// the HTTP server's graceful shutdown.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Completes once [`Hub::shut_down`] was called.
    pub async fn shutting_down(&self) {
        let mut down = self.shutdown.subscribe();
        let _ = down.wait_for(|d| *d).await;
    }

    pub(crate) fn note_slow_consumer(&self) {
        self.slow.fetch_add(1, Ordering::Relaxed);
    }
}

/// A signal as it travels between nodes.
#[derive(Serialize, Deserialize)]
struct Notice {
    node: Uuid,
    typing: Signal,
}

/// Sends a signal to this node's connections and to the other nodes sharing the store.
pub async fn send(hub: &Hub, events: &dyn EventStore, signal: Signal) {
    hub.publish(signal.clone());
    let notice = serde_json::to_string(&Notice { node: hub.node, typing: signal }).expect("a signal serializes");
    if let Err(e) = events.notify_others(&notice).await {
        tracing::warn!(error = %e, "cannot send a typing signal to the other nodes");
    }
}

/// Puts the signals sent by other nodes into this node's hub, for as long as the store has
/// notices; `None` for a store that serves one process only.
pub fn relay(hub: Arc<Hub>, events: &dyn EventStore) -> Option<tokio::task::JoinHandle<()>> {
    let mut notices = events.notices()?;
    Some(tokio::spawn(async move {
        loop {
            match notices.recv().await {
                Ok(payload) => match serde_json::from_str::<Notice>(&payload) {
                    Ok(n) if n.node != hub.node => hub.publish(n.typing),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "ignored a notice that is not a signal"),
                },
                // Signals are ephemeral: missing some under load is acceptable.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }))
}

/// A live connection, counted by its [`Hub`].
pub struct ConnectionGuard<'a>(&'a Hub);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_each_signal_and_publishing_to_nobody_is_fine() {
        let hub = Hub::default();
        let s = Signal { session_id: Uuid::nil(), party: Party::Visitor, typing: true, to: Recipient::Visitor };
        hub.publish(s.clone());
        let (mut a, mut b) = (hub.subscribe(), hub.subscribe());
        hub.publish(s.clone());
        assert_eq!(a.recv().await.unwrap(), s);
        assert_eq!(b.recv().await.unwrap(), s);
        {
            let _c = hub.connection();
            assert_eq!(hub.open_connections(), 1);
        }
        assert_eq!(hub.open_connections(), 0);
        assert_eq!(Hub::new(StreamSettings { queue: 0, ..Default::default() }).settings().queue, 1);
    }
}
