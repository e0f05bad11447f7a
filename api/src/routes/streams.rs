//! `GET /api/v1/streams`: the stream index view.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use projections::stream_index::{StreamSummary, VIEW};
use serde::Serialize;
use store::Position;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::AppState;

/// Query parameters of `GET /api/v1/streams` (documentation; parsing is in the handler).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StreamsQuery {
    /// Only streams of this category.
    category: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Read-your-writes: wait (up to 5 s) until the view includes this position.
    min_position: Option<String>,
}

/// A page of streams, ordered by stream id.
#[derive(Serialize, ToSchema)]
pub struct StreamPage {
    pub streams: Vec<StreamSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Lists streams with their version, event count and first/last event times.
#[utoipa::path(get, path = "/api/v1/streams", tag = "audit", params(StreamsQuery),
    responses((status = 200, body = StreamPage),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn list(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<StreamPage>, Problem> {
    caller.require_admin()?;
    let category = q.text("category");
    let cursor = q.text("cursor");
    let min_position: Option<Position> = q.parse("min_position", "a position (TX:POS)");
    let limit = q.limit(100, 1000);
    q.finish()?;
    wait_for_view(&state, "stream_index", min_position).await?;

    let after = cursor.as_deref().map(|c| (c, c));
    let mut docs = state.views.list(VIEW, category.as_deref(), after, limit + 1).await?;
    let next_cursor = if docs.len() > limit {
        docs.truncate(limit);
        docs.last().map(|d| d.id.clone())
    } else {
        None
    };
    let streams =
        docs.into_iter().map(|d| serde_json::from_value(d.body)).collect::<Result<Vec<StreamSummary>, _>>().map_err(
            |e| {
                tracing::error!(error = %e, "unreadable stream index document");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            },
        )?;
    Ok(Json(StreamPage { streams, next_cursor }))
}
