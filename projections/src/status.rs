//! Projector health as read from the store: checkpoint, lag, parked events. Works from any
//! process (a standby node, the CLI), not only the one running the projector.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::{EventStore, Position, ProjectorState, ReadAll, StoreError, ViewStore};

use crate::projector::Projector;

/// Lag counts stop here: beyond it the exact number does not help anyone.
pub const LAG_COUNT_CAP: u64 = 1_000_000;

/// How far a projector is behind the log.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectorHealth {
    pub projector: String,
    /// Version of the code in this binary.
    pub version: u32,
    /// Version the stored views were built with (`null`: never ran).
    pub stored_version: Option<u32>,
    #[schema(value_type = Option<String>)]
    pub checkpoint: Option<Position>,
    /// Events in the log after the checkpoint (capped at 1,000,000).
    pub lag_events: u64,
    /// How long the oldest unprocessed event has waited, in seconds.
    pub lag_seconds: f64,
    pub parked: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Why the runner's last attempt failed (a commit the store refused, the database
    /// unreachable...); `null` once it committed again.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Reads the health of `projector` from the stores.
pub async fn health(
    projector: &dyn Projector,
    events: &dyn EventStore,
    views: &dyn ViewStore,
) -> Result<ProjectorHealth, StoreError> {
    let state: Option<ProjectorState> = views.projector_state(projector.name()).await?;
    let after = state.as_ref().map_or(Position::START, |s| s.position);
    let lag_events = events.count_after(after, LAG_COUNT_CAP).await?;
    let lag_seconds = if lag_events == 0 {
        0.0
    } else {
        let oldest = events.read_all(&ReadAll::forward(after, 1)).await?;
        oldest.first().map_or(0.0, |e| (Utc::now() - e.recorded_at).num_milliseconds().max(0) as f64 / 1000.0)
    };
    Ok(ProjectorHealth {
        projector: projector.name().to_string(),
        version: projector.version(),
        stored_version: state.as_ref().map(|s| s.projector_version),
        checkpoint: state.as_ref().map(|s| s.position),
        lag_events,
        lag_seconds,
        parked: state.as_ref().map_or(0, |s| s.parked),
        last_event_at: state.as_ref().and_then(|s| s.last_event_at),
        heartbeat_at: state.as_ref().map(|s| s.heartbeat_at),
        last_error: state.as_ref().and_then(|s| s.last_error.clone()),
        last_error_at: state.as_ref().and_then(|s| s.last_error_at),
    })
}

/// Read-your-writes: waits until `projector` has applied `min`, polling the stored
/// checkpoint (which works across nodes). Returns false if `timeout` passed first.
pub async fn wait_for(
    views: &dyn ViewStore,
    projector: &str,
    min: Position,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let reached = views.projector_state(projector).await?.is_some_and(|s| s.position >= min);
        if reached {
            return Ok(true);
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
