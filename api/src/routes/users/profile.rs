//! One's profile, password and status (and an administrator changing someone's profile).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::accounts::{self as use_cases, AccountError};
use projections::users::UserSummary;
use uuid::Uuid;

use super::{decorate, respond, show_user, PasswordChange, ProfilePatch, StatusChange};
use crate::auth::Caller;
use crate::commanding::{context, if_match, json_body, path_id, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::auth::{throttle_key, too_many};
use crate::throttle::ClientAddr;
use crate::AppState;

/// Changes a profile; `If-Match` makes a stale edit a 409 instead of an overwrite.
async fn update_user(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: Uuid,
    patch: ProfilePatch,
) -> Result<Response, Problem> {
    caller.require_self_or_admin(id)?;
    if patch.role.is_some() && !caller.is_admin() {
        return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "only an administrator may change roles"));
    }
    let expected = if_match(headers)?;
    let ctx = context(state, caller.actor(), headers);
    let written = use_cases::update_profile(state, &ctx, id, patch.into(), expected).await?;
    Ok(respond(StatusCode::OK, &written))
}

/// Changes a user's profile (administrators, or the user for their own); `role` needs an
/// administrator. Send the `ETag` as `If-Match` to refuse (409) a stale edit.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = ProfilePatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = UserSummary, headers(("ETag" = String), ("X-Livechat-Position" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "version-conflict"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<ProfilePatch>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "user")?;
    caller.require_self_or_admin(id)?;
    let patch = json_body(body)?;
    update_user(&state, &caller, &headers, id, patch).await
}

/// Changes a password, which revokes every token of the user (log in again afterwards).
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", request_body = PasswordChange,
    params(("id" = Uuid, Path)),
    responses((status = 204, headers(("ETag" = String), ("X-Livechat-Position" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json", description = "forbidden or wrong-password"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 429, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<PasswordChange>,
) -> Result<Response, Response> {
    let id = path_id(&id, "user").map_err(IntoResponse::into_response)?;
    caller.require_self_or_admin(id).map_err(IntoResponse::into_response)?;
    let change = json_body(body).map_err(IntoResponse::into_response)?;
    let own = id == caller.user_id;
    let change = use_cases::PasswordChange::new(id, own, change.password, change.current_password)
        .map_err(|e| Problem::from(e).into_response())?;
    // Guessing the current password with a stolen token counts against the login.
    let attempt = match change.checks_current() {
        true => {
            let login = caller.user.login.as_ref().map(|l| l.as_str().to_string()).unwrap_or_default();
            Some(state.throttle.begin(&throttle_key(&login), address, state.clock.now()).map_err(too_many)?)
        }
        false => None,
    };
    let expected = match if_match(&headers) {
        Ok(expected) => expected,
        Err(p) => {
            if let Some(a) = attempt {
                state.throttle.abandoned(a);
            }
            return Err(p.into_response());
        }
    };
    let ctx = context(&state, caller.actor(), &headers);
    let written = match use_cases::change_password(&state, &ctx, change, &caller.user, expected).await {
        Err(e @ AccountError::WrongPassword) => return Err(Problem::from(e).into_response()),
        done => {
            if let Some(a) = attempt {
                state.throttle.succeeded(a);
            }
            done.map_err(|e| Problem::from(e).into_response())?
        }
    };
    let mut res = StatusCode::NO_CONTENT.into_response();
    decorate(&mut res, written.outcome);
    Ok(res)
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = UserSummary, headers(("ETag" = String))),
              (status = 401, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    show_user(&state, caller.user_id).await
}

/// Changes the caller's own profile (as `PATCH /api/v1/users/{id}`).
#[utoipa::path(patch, path = "/api/v1/me", tag = "users", request_body = ProfilePatch,
    params(("If-Match" = Option<String>, Header)),
    responses((status = 200, body = UserSummary, headers(("ETag" = String), ("X-Livechat-Position" = String))),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body<ProfilePatch>,
) -> Result<Response, Problem> {
    let patch = json_body(body)?;
    update_user(&state, &caller, &headers, caller.user_id, patch).await
}

/// Sets the caller's presence status; only `online` operators get conversations.
#[utoipa::path(put, path = "/api/v1/me/status", tag = "presence", request_body = StatusChange,
    responses((status = 200, body = UserSummary, headers(("ETag" = String), ("X-Livechat-Position" = String))),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body<StatusChange>,
) -> Result<Response, Problem> {
    let change = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let written = use_cases::set_status(&state, &ctx, caller.user_id, &change.status).await?;
    Ok(respond(StatusCode::OK, &written))
}
