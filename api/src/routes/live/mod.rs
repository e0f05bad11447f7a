//! `GET /api/v1/stream`: the real-time stream, a WebSocket of the events a caller may see and
//! of ephemeral signals (typing).
//!
//! * Auth before upgrading: `Authorization: Bearer ...` or `?access_token=...` (browsers cannot
//!   set headers on WebSockets); operator/admin tokens (`lc_...`) and visitor tokens (`vt_...`).
//! * `?from=POS` resumes after a position the client received (nothing lost, nothing twice, in
//!   order); without it the stream starts at the current head. The first frame is
//!   `{"type":"ready","position":...}`.
//! * Events come from one [`Subscription`] per connection (it wakes on local commits and polls
//!   for other nodes' commits). Who sees what is [`visible`], a pure function of the viewer,
//!   the event and the state folded just before it; the connection keeps that state in small
//!   caches, loading a stream up to the event when it first meets it.
//! * Every frame goes through a bounded queue. Events wait for room (a catch-up goes at the
//!   pace of the socket, never piling up in memory); a queue that stays full for
//!   `slow_after` closes the socket with 1008 "slow consumer: reconnect with ?from=<position of
//!   the last event written>". Typing and error frames are dropped when there is no room.
//! * Pings every `ping_interval`; a client silent for two intervals is closed (1001). An
//!   operator's token is checked again when their user stream changes (revocation,
//!   deactivation, role) and every `recheck_token` (expiry); a failed check closes with 1008.
//!   [`crate::signals::Hub::shut_down`] closes every connection with 1001 and where to resume.
//! * One task per connection: the socket loop and the producers are branches of one
//!   `tokio::select!`, so a closed socket ends all of them.
//!
//! Typing signals are per node (see [`crate::signals`]).
//!
//! The files, in the order a frame meets them: `token` (who the caller is, and whether the
//! token still holds), `connection` (the per-socket task: catch-up, following the feed, the
//! socket loop, token re-checks), `tracker` (the state folded to decide visibility),
//! `visibility` (the pure `visible`), `outbox` (the bounded queue and why a connection
//! closes), `frames` (the wire frames), `typing` (typing signals both ways).

mod connection;
mod frames;
mod outbox;
#[cfg(test)]
mod story;
mod token;
mod tracker;
mod typing;
mod visibility;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use store::Position;
use utoipa::IntoParams;

pub use self::frames::redact;
pub use self::typing::{receives, typing_route};
pub use self::visibility::{visible, Conversation, Subject, Viewer};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/stream", get(stream))
}

/// Query parameters of `GET /api/v1/stream` (documentation; parsing is in the handler).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StreamQuery {
    /// The token, for clients that cannot send `Authorization` (browsers' WebSockets).
    access_token: Option<String>,
    /// Resume after this position (the `position` of the last frame received).
    from: Option<String>,
}

/// Opens the real-time stream (WebSocket).
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream", params(StreamQuery),
    responses((status = 101, description = "switching to the WebSocket: `ready`, `event`, `typing` and `error` frames"),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let (viewer, digest) = token::authenticate(&state, &headers, q.text("access_token")).await?;
    let from: Option<Position> = q.parse("from", "a position (TX:POS) received from this stream");
    q.finish()?;
    let upgrade = upgrade.map_err(|r| Problem::new(r.status(), "websocket-required", r.body_text()))?;
    let start = match from {
        Some(p) => p,
        None => state.events.head().await?.unwrap_or(Position::START),
    };
    Ok(upgrade
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .on_upgrade(move |socket| connection::connection(socket, state, viewer, digest, start)))
}
