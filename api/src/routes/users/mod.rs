//! Users: accounts (admins), one's own profile, password and status (everyone). The use
//! cases are `commands::accounts` (also what `livechat user` runs); these handlers check who
//! may call them and shape the answers.
//!
//! Single users are read from their stream, so a response and its `ETag` (the stream
//! version) are always current; the list comes from the `users` view (`min_position` waits
//! for it). Every write answers with `ETag` and, when it wrote, `X-Livechat-Position`: the
//! position to pass as `min_position` to read the views after it.

mod accounts;
mod bodies;
mod profile;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use commands::accounts::Written;
use commands::Outcome;
use uuid::Uuid;

pub use self::accounts::*;
pub use self::bodies::*;
pub use self::profile::*;
use crate::commanding::{etag, mark_position};
use crate::problem::Problem;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{id}", get(show).patch(update))
        .route("/api/v1/users/{id}/password", put(password))
        .route("/api/v1/users/{id}/deactivate", post(deactivate))
        .route("/api/v1/users/{id}/reactivate", post(reactivate))
        .route("/api/v1/me", get(me).patch(update_me))
        .route("/api/v1/me/status", put(status))
}

fn respond(status: StatusCode, written: &Written) -> Response {
    let mut res = (status, Json(&written.user)).into_response();
    decorate(&mut res, written.outcome);
    res
}

/// `ETag` and, if the command wrote, `X-Livechat-Position`.
fn decorate(res: &mut Response, outcome: Outcome) {
    if let Some((k, v)) = etag(outcome.version) {
        res.headers_mut().insert(k, v);
    }
    mark_position(res, outcome.position);
}

async fn show_user(state: &AppState, id: Uuid) -> Result<Response, Problem> {
    let (u, version) = commands::accounts::current(state, id).await?;
    let mut res = Json(commands::accounts::summary(&u, version)).into_response();
    if let Some((k, v)) = etag(Some(version)) {
        res.headers_mut().insert(k, v);
    }
    Ok(res)
}
