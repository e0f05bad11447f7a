//! `GET /api/v1/events`: the log, for audit.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use store::{Direction, EventFilter, Position, ReadAll, RecordedEvent};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::AppState;

/// Query parameters of `GET /api/v1/events` (documentation; parsing is in the handler).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsQuery {
    /// Only this stream (e.g. `channel-0190...`).
    stream: Option<String>,
    /// Only streams of this category (the part of the stream id before the first `-`).
    category: Option<String>,
    /// Only these event types, comma-separated.
    event_type: Option<String>,
    /// Start at this position (inclusive), as printed in `position`.
    from: Option<String>,
    /// `asc` (oldest first, default) or `desc` (newest first).
    order: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An event as stored (the wire format of the audit log).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct EventSchema {
    /// Opaque, totally ordered place in the log (`tx:pos`).
    position: String,
    event_id: uuid::Uuid,
    stream_id: String,
    /// 0-based version within the stream.
    stream_version: u64,
    event_type: String,
    schema_version: u32,
    data: serde_json::Value,
    /// Actor, correlation and causation ids, request id.
    metadata: serde_json::Value,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

/// A page of events.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    #[schema(value_type = Vec<EventSchema>)]
    pub events: Vec<RecordedEvent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Reads the event log with filters and cursor pagination.
#[utoipa::path(get, path = "/api/v1/events", tag = "audit", params(EventsQuery),
    responses((status = 200, body = EventPage),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn list(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<EventPage>, Problem> {
    caller.require_admin()?;
    let filter = EventFilter {
        stream: q.text("stream"),
        category: q.text("category"),
        event_types: q
            .text("event_type")
            .map(|t| t.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
    };
    let from: Option<Position> = q.parse("from", "a position (TX:POS)");
    let cursor: Option<Position> = q.parse("cursor", "a cursor returned by this API");
    let direction = match q.text("order").as_deref() {
        None | Some("asc") => Direction::Forward,
        Some("desc") => Direction::Backward,
        Some(other) => {
            q.error("order", format!("'{other}' is not asc or desc"));
            Direction::Forward
        }
    };
    let limit = q.limit(100, 1000);
    q.finish()?;

    // The cursor is the last position served: read strictly after (or before) it.
    let bound = match (direction, cursor, from) {
        (_, Some(c), _) => Some(c),
        (Direction::Forward, None, Some(f)) => Some(f.just_before()),
        (Direction::Backward, None, Some(f)) => Some(Position::new(f.tx, f.pos.saturating_add(1))),
        (_, None, None) => None,
    };
    let query = ReadAll { from: bound, direction, limit: limit + 1, filter };
    let mut events = state.events.read_all(&query).await?;
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| e.position.to_string())
    } else {
        None
    };
    for e in &mut events {
        domain::user::redact(&e.event_type, &mut e.data);
    }
    Ok(Json(EventPage { events, next_cursor }))
}
