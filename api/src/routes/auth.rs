//! `POST /api/v1/auth/token`: log in, throttled per login and per client address
//! (`crate::throttle`).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use commands::{execute, stream_id};
use domain::metadata::{Actor, ActorKind};
use domain::user::{issue_token, Login, User};
use domain::values::Email;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{mint, verify_password};
use crate::commanding::{context, read, refused};
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

fn wrong() -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "invalid-credentials", "wrong login or password")
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

/// Checks the credentials and issues a token.
/// A hash no password matches, checked instead of a real one for unknown or inactive logins.
async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            let random = uuid::Uuid::new_v4().to_string();
            crate::auth::hash_password(random).await.unwrap_or_default()
        })
        .await
        .clone()
}

async fn issue(state: &AppState, headers: &HeaderMap, req: TokenRequest) -> Result<Json<TokenResponse>, Problem> {
    let login = Email::parse("login", &req.login).map_err(|_| wrong())?;
    let claim = read::<Login>(state, login.as_str()).await?;
    let Some(user_id) = claim.state.owner else {
        // As slow as a real check, so that timing does not tell which logins exist.
        verify_password(req.password, dummy_hash().await).await;
        return Err(wrong());
    };
    let user = state.users.get(state.events.as_ref(), user_id).await?;
    let hash = if user.active { user.password_hash.clone() } else { dummy_hash().await };
    if !verify_password(req.password, hash).await || !user.active {
        return Err(wrong());
    }
    let (token, digest) = mint(user_id);
    let ttl = state.config.token_ttl;
    let expires_at = state.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    let mut ctx = context(state, Actor { kind: ActorKind::Operator, id: Some(user_id) }, headers);
    // Every login is a new token: a replayed key must not hand back a token never stored.
    ctx.idempotency_key = None;
    execute::<User, _>(state.events.as_ref(), &stream_id::<User>(user_id), &ctx, None, |u| {
        issue_token(u, digest.clone(), expires_at)
    })
    .await
    .map_err(refused)?;
    let role = serde_json::to_value(user.role).ok().and_then(|r| r.as_str().map(String::from)).unwrap_or_default();
    Ok(Json(TokenResponse { access_token: token, token_type: "Bearer", expires_in: ttl.as_secs(), user_id, role }))
}
