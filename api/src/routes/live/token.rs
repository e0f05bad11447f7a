//! Who holds a connection, from its token, and whether an operator's token still holds.

use axum::extract::FromRequestParts;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use domain::user::Role;

use super::visibility::Viewer;
use crate::auth::{self, Caller};
use crate::problem::Problem;
use crate::AppState;

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

/// The viewer, and for operators and admins the digest of their token (checked again later).
pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<String>,
) -> Result<(Viewer, Option<String>), Problem> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string());
    let token = from_header
        .or(query_token)
        .ok_or_else(|| unauthorized("send the token as `Authorization: Bearer <token>` or `?access_token=<token>`"))?;
    if token.starts_with("vt_") {
        let session_id = crate::visitor::verify(state, &token).await?;
        return Ok((Viewer::Visitor { session_id }, None));
    }
    // The same check as every other route, whichever way the token came.
    let value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| unauthorized("this is not a livechat token"))?;
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers.insert(header::AUTHORIZATION, value);
    let caller = Caller::from_request_parts(&mut parts, state).await?;
    let viewer = if caller.is_admin() {
        Viewer::Admin { user_id: caller.user_id }
    } else {
        Viewer::Operator { user_id: caller.user_id }
    };
    Ok((viewer, Some(auth::digest(&token))))
}

/// Whether an operator's token still holds (not expired or revoked, same role).
pub(super) async fn still_valid(state: &AppState, viewer: Viewer, digest: Option<&str>) -> bool {
    let (Viewer::Operator { user_id } | Viewer::Admin { user_id }, Some(digest)) = (viewer, digest) else {
        return true;
    };
    match state.users.get(state.events.as_ref(), user_id).await {
        Ok(user) => {
            user.accepts(digest, state.clock.now())
                && (user.role == Role::Admin) == matches!(viewer, Viewer::Admin { .. })
        }
        // A store hiccup does not end the connection; the subscription reports lasting ones.
        Err(_) => true,
    }
}
