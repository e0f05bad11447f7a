//! The bounded queue of frames a connection writes, and why a connection closes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::timeout;

use super::frames::Frame;
use crate::signals::Hub;

/// Why the server closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Closing {
    SlowConsumer,
    TokenRevoked,
    StoreFailed,
    Silent,
    ShuttingDown,
}

/// The bounded queue of frames to write, shared by the producers of a connection.
pub(super) struct Outbox {
    pub(super) frames: mpsc::Sender<Frame>,
    pub(super) hub: Arc<Hub>,
    pub(super) slow_after: Duration,
}

impl Outbox {
    /// Queues an event frame, waiting for room (a catch-up goes at the pace of the socket);
    /// a queue that stays full for `slow_after` means the client does not keep up.
    pub(super) async fn push(&self, frame: Frame) -> Result<(), Closing> {
        let frame = match self.frames.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(frame)) => frame,
            // The socket loop is gone: the whole connection is ending.
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closing::SlowConsumer),
        };
        match timeout(self.slow_after, self.frames.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Closing::SlowConsumer),
            Err(_) => {
                self.hub.note_slow_consumer();
                Err(Closing::SlowConsumer)
            }
        }
    }

    /// Queues an ephemeral frame (typing, errors) if there is room; otherwise it is dropped.
    pub(super) fn offer(&self, frame: Frame) {
        if self.frames.try_send(frame).is_err() {
            tracing::debug!("stream queue full: an ephemeral frame was dropped");
        }
    }
}
