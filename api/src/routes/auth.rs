//! `POST /api/v1/auth/token`: log in, throttled per login and per client address
//! (`crate::throttle`).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use commands::accounts;
use domain::metadata::Actor;
use domain::values::Email;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::commanding::context;
use crate::problem::{Problem, ProblemDocument};
use crate::throttle::ClientAddr;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/auth/token", post(token))
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The user's email.
    pub login: String,
    pub password: String,
}

/// A bearer token for `Authorization: Bearer ...`.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    pub user_id: uuid::Uuid,
    pub role: String,
}

/// 429 with `Retry-After` (whole seconds, rounded up) for a throttled login.
pub(crate) fn too_many(wait: chrono::Duration) -> Response {
    let secs = (wait.num_milliseconds().max(1) as u64).div_ceil(1000);
    let mut res = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-attempts",
        format!("too many failed logins; retry in {secs} seconds"),
    )
    .into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// The key a login is throttled under: the normalised email, or the raw text lower-cased.
pub(crate) fn throttle_key(raw: &str) -> String {
    Email::parse("login", raw).map(|e| e.as_str().to_string()).unwrap_or_else(|_| raw.trim().to_lowercase())
}

/// Exchanges a login and password for a bearer token.
///
/// After 5 failures for a login within 15 minutes (or 20 from one address), attempts are
/// refused with 429 and `Retry-After` until the window frees, even with the right password.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 429, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn token(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Json<TokenResponse>, Response> {
    let Json(req) =
        body.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad-json", e.body_text()).into_response())?;
    let attempt = state.throttle.begin(&throttle_key(&req.login), address, state.clock.now()).map_err(too_many)?;
    match issue(&state, &headers, req).await {
        Ok(issued) => {
            state.throttle.succeeded(attempt);
            Ok(issued)
        }
        Err(p) if p.status == StatusCode::UNAUTHORIZED => Err(p.into_response()),
        Err(p) => {
            state.throttle.abandoned(attempt);
            Err(p.into_response())
        }
    }
}

/// Checks the credentials and issues a token (the use case acts as the user it finds).
async fn issue(state: &AppState, headers: &HeaderMap, req: TokenRequest) -> Result<Json<TokenResponse>, Problem> {
    let ctx = context(state, Actor::system(), headers);
    let issued = accounts::log_in(state, &ctx, &req.login, req.password).await?;
    let role = serde_json::to_value(issued.role).ok().and_then(|r| r.as_str().map(String::from)).unwrap_or_default();
    Ok(Json(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        user_id: issued.user_id,
        role,
    }))
}
