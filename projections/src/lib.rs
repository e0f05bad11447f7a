//! Read models: projectors (pure event -> document changes) and the runner that keeps them
//! up to date.
//!
//! Architecture invariant: projectors do no I/O; only the runner talks to the stores, and
//! it writes documents and checkpoints in one transaction (exactly-once views).

pub mod audit;
pub mod canned;
pub mod channels;
pub mod chatbots;
pub mod conversations;
pub mod projector;
pub mod ratings;
pub mod read;
pub mod reports;
pub mod runner;
pub mod status;
pub mod stream_index;
pub mod transcripts;
pub mod users;

use std::sync::Arc;

pub use projector::{Docs, Draft, ProjectionError, Projector};
pub use runner::{rebuild, RebuildProgress, RebuildReport, Role, Runner, RunnerConfig, RunnerStatus};
pub use status::{health, wait_for, ProjectorHealth};

/// Every projector this binary runs.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(stream_index::StreamIndex),
        Arc::new(users::Users),
        Arc::new(channels::Channels),
        Arc::new(conversations::Conversations),
        Arc::new(canned::CannedResponses),
        Arc::new(transcripts::Transcripts),
        Arc::new(ratings::Ratings),
        Arc::new(chatbots::Chatbots),
        Arc::new(reports::Reports),
        Arc::new(audit::Audit),
    ]
}

/// The projector called `name`, if this binary has one.
pub fn by_name(name: &str) -> Option<Arc<dyn Projector>> {
    all().into_iter().find(|p| p.name() == name)
}
