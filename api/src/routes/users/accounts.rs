//! Accounts, for administrators: creating, listing, showing, deactivating, reactivating.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use commands::accounts as use_cases;
use projections::users::{UserSummary, VIEW};
use store::Position;

use super::{cursor_of, parse_cursor, respond, show_user, NewUser, UserPage, UsersQuery};
use crate::auth::Caller;
use crate::commanding::{context, json_body, path_id, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::AppState;

/// Creates a user (administrators). The login is claimed first, so it stays unique.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key returns the first result")),
    responses((status = 201, body = UserSummary, headers(("ETag" = String), ("Location" = String), ("X-Livechat-Position" = String))),
              (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "login-taken"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body<NewUser>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let new = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let written = use_cases::create_user(&state, &ctx, new.into()).await?;
    let mut res = respond(StatusCode::CREATED, &written);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/users/{}", written.user.user_id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Lists users by login (administrators), from the `users` view.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UsersQuery),
    responses((status = 200, body = UserPage),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn list(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<UserPage>, Problem> {
    caller.require_admin()?;
    let cursor = q.text("cursor");
    let after = cursor.as_deref().and_then(parse_cursor);
    if cursor.is_some() && after.is_none() {
        q.error("cursor", "is not a cursor returned by this API");
    }
    let min_position: Option<Position> = q.parse("min_position", "a position (TX:POS)");
    let limit = q.limit(100, 1000);
    q.finish()?;
    wait_for_view(&state, "users", min_position).await?;

    let after = after.as_ref().map(|(s, i)| (s.as_str(), i.as_str()));
    let mut docs = state.views.list(VIEW, None, after, limit + 1).await?;
    let next_cursor = if docs.len() > limit {
        docs.truncate(limit);
        docs.last().map(|d| cursor_of(&d.sort_key, &d.id))
    } else {
        None
    };
    let users =
        docs.into_iter().map(|d| serde_json::from_value(d.body)).collect::<Result<Vec<UserSummary>, _>>().map_err(
            |e| {
                tracing::error!(error = %e, "unreadable user document");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            },
        )?;
    Ok(Json(UserPage { users, next_cursor }))
}

/// One user (administrators, or the user themselves), from their stream; `ETag` is its version.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserSummary, headers(("ETag" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = path_id(&id, "user")?;
    caller.require_self_or_admin(id)?;
    show_user(&state, id).await
}

/// Deactivates a user (administrators): their tokens are revoked, they cannot log in, and
/// they leave every channel. Administrators cannot deactivate themselves.
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserSummary, headers(("ETag" = String), ("X-Livechat-Position" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "cannot-deactivate-self")))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "user")?;
    let ctx = context(&state, caller.actor(), &headers);
    Ok(respond(StatusCode::OK, &use_cases::deactivate_user(&state, &ctx, id).await?))
}

/// Reactivates a user (administrators); they log in again to get a token.
#[utoipa::path(post, path = "/api/v1/users/{id}/reactivate", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserSummary, headers(("ETag" = String), ("X-Livechat-Position" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "user")?;
    let ctx = context(&state, caller.actor(), &headers);
    Ok(respond(StatusCode::OK, &use_cases::reactivate_user(&state, &ctx, id).await?))
}
