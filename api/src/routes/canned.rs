//! Canned responses: operators manage their own, administrators everyone's and alone share
//! them with every operator. A shortcut is claimed on its owner's claim stream before a
//! response takes it (created or renamed) and released after it lets it go, which keeps
//! shortcuts unique per owner (`commands::canned`).
//!
//! Single responses are read from their stream (`ETag` = its version, which also moves when
//! the response is used); lists and suggestions come from the `canned_responses` view
//! (`min_position` waits for it).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use commands::canned::{self as use_case, CannedChange};
use commands::Outcome;
use domain::canned::{self, CannedError, CannedResponse, Editor, NewCanned};
use projections::canned::CannedSummary;
use serde::{Deserialize, Serialize};
use store::Position;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{context, etag, if_match, json_body, mark_position, path_id, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/canned-responses", get(list).post(create))
        .route("/api/v1/canned-responses/{id}", get(show).patch(update).delete(delete))
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// A new canned response.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCannedResponse {
    /// Typed as `:shortcut`; letters, digits, `_`, `-`, `.`; at most 40; stored lower case.
    #[serde(default)]
    #[schema(example = "hello")]
    pub shortcut: String,
    /// The replacement, 1 to 4,000 characters.
    #[serde(default)]
    #[schema(example = "Hello! How can I help you today?")]
    pub text: String,
    /// Offer it to every operator (administrators only).
    #[serde(default)]
    pub shared: bool,
    /// The owner (administrators may create for another user; default: the caller).
    #[serde(default)]
    pub owner_id: Option<Uuid>,
}

/// Changes: absent fields keep their value; `shared` needs an administrator.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedPatch {
    #[serde(default)]
    pub shortcut: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub shared: Option<bool>,
}

/// Canned responses, most used first.
#[derive(Serialize, ToSchema)]
pub struct CannedPage {
    pub canned_responses: Vec<CannedSummary>,
}

/// Query parameters of `GET /api/v1/canned-responses` (documentation; parsing is in the handler).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CannedQuery {
    /// Shortcuts starting with this (a leading `:` is ignored; case-insensitive).
    prefix: Option<String>,
    /// `mine` (default: the caller's own and the shared ones) or `all` (administrators).
    scope: Option<String>,
    /// At most this many, 1 to 500 (default 50).
    limit: Option<usize>,
    /// Read-your-writes: wait (up to 5 s) until the view includes this position.
    min_position: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reads shared with the operators' message post and chat commands (`commands::canned`)

fn editor(caller: &Caller) -> Editor {
    Editor { user_id: caller.user_id, admin: caller.is_admin() }
}

/// How a response looks in answers.
pub fn summary(c: &CannedResponse, version: u64) -> CannedSummary {
    CannedSummary {
        canned_response_id: c.id.unwrap_or_default(),
        owner_id: c.owner_id,
        shortcut: c.shortcut.clone(),
        text: c.text.clone(),
        shared: c.shared,
        use_count: c.use_count,
        last_used_at: c.last_used_at,
        version,
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn respond(status: StatusCode, outcome: Outcome, c: &CannedResponse) -> Response {
    let version = outcome.version.unwrap_or_default();
    let mut res = (status, Json(summary(c, version))).into_response();
    if let Some((k, v)) = etag(outcome.version) {
        res.headers_mut().insert(k, v);
    }
    mark_position(&mut res, outcome.position);
    res
}

/// Creates a canned response; its shortcut is claimed first, so it stays unique per owner.
#[utoipa::path(post, path = "/api/v1/canned-responses", tag = "canned responses", request_body = NewCannedResponse,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key returns the first result")),
    responses((status = 201, body = CannedSummary, headers(("ETag" = String), ("Location" = String), ("X-Livechat-Position" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "shortcut-taken"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body<NewCannedResponse>,
) -> Result<Response, Problem> {
    let b = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let id = ctx.new_id("canned");
    let owner = b.owner_id.unwrap_or(caller.user_id);
    let new = NewCanned { canned_id: id, owner_id: owner, shortcut: b.shortcut, text: b.text, shared: b.shared };
    let (outcome, after) = use_case::create(&state, &ctx, editor(&caller), &new).await?;
    let mut res = respond(StatusCode::CREATED, outcome, &after);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/canned-responses/{id}")) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// The caller's canned responses and the shared ones (or everyone's, `scope=all`, for
/// administrators), most used first; `prefix` filters by shortcut.
#[utoipa::path(get, path = "/api/v1/canned-responses", tag = "canned responses", params(CannedQuery),
    responses((status = 200, body = CannedPage),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn list(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<CannedPage>, Problem> {
    let raw_prefix = q.text("prefix").unwrap_or_default();
    let prefix = raw_prefix.trim().trim_start_matches(':').to_lowercase();
    if prefix.chars().count() > canned::MAX_SHORTCUT_CHARS {
        q.error("prefix", format!("is longer than {} characters", canned::MAX_SHORTCUT_CHARS));
    }
    let all = match q.text("scope").as_deref() {
        None | Some("mine") => false,
        Some("all") => true,
        Some(other) => {
            q.error("scope", format!("'{other}' is not mine or all"));
            false
        }
    };
    let limit = q.limit(50, 500);
    let min_position: Option<Position> = q.parse("min_position", "a position (TX:POS)");
    q.finish()?;
    if all {
        caller.require_admin()?;
    }
    wait_for_view(&state, "canned_responses", min_position).await?;
    let mut found = if all {
        use_case::everyones(&state, &prefix).await?
    } else {
        use_case::suggestions(&state, caller.user_id, &prefix).await?
    };
    found.truncate(limit);
    Ok(Json(CannedPage { canned_responses: found }))
}

/// One canned response (its owner, administrators, or anyone when shared), from its stream.
#[utoipa::path(get, path = "/api/v1/canned-responses/{id}", tag = "canned responses", params(("id" = Uuid, Path)),
    responses((status = 200, body = CannedSummary, headers(("ETag" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = path_id(&id, "canned response")?;
    let (c, version) = use_case::current(&state, id).await?;
    if !caller.is_admin() && !c.usable_by(caller.user_id) {
        return Err(CannedError::NotYours.into());
    }
    Ok(respond(StatusCode::OK, Outcome { version: Some(version), position: None, written: 0, recorded_at: None }, &c))
}

/// Changes a canned response (its owner or an administrator; `shared` needs an
/// administrator). A new shortcut is claimed before it is taken and the old one released
/// after. Send the `ETag` as `If-Match` to refuse (409) a stale edit.
#[utoipa::path(patch, path = "/api/v1/canned-responses/{id}", tag = "canned responses", request_body = CannedPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CannedSummary, headers(("ETag" = String), ("X-Livechat-Position" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "shortcut-taken or version-conflict"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<CannedPatch>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "canned response")?;
    let patch = json_body(body)?;
    let expected = if_match(&headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let change = CannedChange { shortcut: patch.shortcut, text: patch.text, shared: patch.shared };
    let (outcome, after) = use_case::update(&state, &ctx, editor(&caller), id, expected, &change).await?;
    Ok(respond(StatusCode::OK, outcome, &after))
}

/// Deletes a canned response (its owner or an administrator); its shortcut is free again.
#[utoipa::path(delete, path = "/api/v1/canned-responses/{id}", tag = "canned responses",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, headers(("X-Livechat-Position" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "version-conflict")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "canned response")?;
    let expected = if_match(&headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let outcome = use_case::delete(&state, &ctx, editor(&caller), id, expected).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    mark_position(&mut res, outcome.position);
    Ok(res)
}
