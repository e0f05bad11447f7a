//! Errors shared by the modules that read stored events.

/// A stored event this code cannot read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot decode {event_type}: {reason}")]
pub struct DecodeError {
    pub event_type: String,
    pub reason: String,
}
