//! Canned responses: operators manage their own, administrators everyone's and alone share
//! them with every operator. A shortcut is claimed on its owner's claim stream before a
//! response takes it (created or renamed) and released after it lets it go, which keeps
//! shortcuts unique per owner.
//!
//! Single responses are read from their stream (`ETag` = its version, which also moves when
//! the response is used); lists and suggestions come from the `canned_responses` view
//! (`min_position` waits for it).

use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use commands::{execute, load, stream_id, Context, Outcome};
use domain::canned::{self, CannedError, CannedResponse, Editor, NewCanned, Shortcut, ShortcutError};
use domain::values::Invalid;
use domain::Aggregate;
use projections::canned::{CannedSummary, SHARED, VIEW};
use serde::{Deserialize, Serialize};
use store::Position;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{context, etag, if_match, invalid, json_body, mark_position, path_id, read, refused, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::routes::streams::wait_for_view;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/canned-responses", get(list).post(create))
        .route("/api/v1/canned-responses/{id}", get(show).patch(update).delete(delete))
}

impl From<CannedError> for Problem {
    fn from(e: CannedError) -> Self {
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            CannedError::NotFound => Problem::not_found("no such canned response"),
            CannedError::AlreadyExists => code(StatusCode::CONFLICT, "already-exists"),
            CannedError::NotYours => code(StatusCode::FORBIDDEN, "not-your-canned-response"),
            CannedError::OnlyAdminsShare => code(StatusCode::FORBIDDEN, "forbidden"),
            CannedError::Invalid(errors) => invalid(errors.clone()),
        }
    }
}

impl From<ShortcutError> for Problem {
    fn from(e: ShortcutError) -> Self {
        let mut p = invalid(vec![Invalid::new("shortcut", "is already used by another canned response of this owner")]);
        p.status = StatusCode::CONFLICT;
        p.code = "shortcut-taken";
        p.detail = e.to_string();
        p
    }
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
// Operations, shared with the operators' message post and chat commands

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

/// A live canned response as stored now, with its version; 404 if there is none.
pub async fn current(state: &AppState, id: Uuid) -> Result<(CannedResponse, u64), Problem> {
    let loaded = read::<CannedResponse>(state, id).await?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok((loaded.state, v)),
        _ => Err(Problem::not_found("no such canned response")),
    }
}

fn claim_stream(owner: Uuid, shortcut: &str) -> String {
    stream_id::<Shortcut>(canned::claim_stream_key(owner, shortcut))
}

async fn claim(state: &AppState, ctx: &Context, owner: Uuid, shortcut: &str, id: Uuid) -> Result<(), Problem> {
    execute::<Shortcut, _>(state.events.as_ref(), &claim_stream(owner, shortcut), ctx, None, |s| canned::claim(s, id))
        .await
        .map_err(refused)?;
    Ok(())
}

async fn release(state: &AppState, ctx: &Context, owner: Uuid, shortcut: &str, id: Uuid) -> Result<(), Problem> {
    execute::<Shortcut, _>(state.events.as_ref(), &claim_stream(owner, shortcut), ctx, None, |s| {
        canned::release(s, id)
    })
    .await
    .map_err(refused)?;
    Ok(())
}

/// Runs a decision on a response; the outcome and the response as decided (or as stored,
/// for a retried request that decided nothing).
async fn write(
    state: &AppState,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    decide: impl Fn(&CannedResponse) -> Result<Vec<canned::CannedEvent>, CannedError>,
) -> Result<(Outcome, CannedResponse, CannedResponse), Problem> {
    let decided: Mutex<Option<(CannedResponse, CannedResponse)>> = Mutex::new(None);
    let stream = stream_id::<CannedResponse>(id);
    let outcome = execute::<CannedResponse, CannedError>(state.events.as_ref(), &stream, ctx, expected, |c| {
        let events = decide(c)?;
        let mut after = c.clone();
        events.iter().for_each(|e| after.apply(e));
        *decided.lock().unwrap_or_else(|p| p.into_inner()) = Some((c.clone(), after));
        Ok(events)
    })
    .await
    .map_err(refused)?;
    let (before, after) = match decided.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(pair) => pair,
        None => {
            let loaded = load::<CannedResponse>(state.events.as_ref(), &stream)
                .await
                .map_err(|e| refused::<Problem>(e.into()))?;
            (loaded.state.clone(), loaded.state)
        }
    };
    Ok((outcome, before, after))
}

/// The response the caller may post with this id: their own or a shared one.
pub async fn usable(state: &AppState, user: Uuid, id: Uuid) -> Result<Option<CannedResponse>, Problem> {
    let loaded = read::<CannedResponse>(state, id).await?;
    Ok(Some(loaded.state).filter(|c| c.usable_by(user)))
}

/// The response `:shortcut` names for `user`: their own (from its claim stream, always
/// current), else a shared one (from the view).
pub async fn by_shortcut(state: &AppState, user: Uuid, typed: &str) -> Result<Option<CannedResponse>, Problem> {
    let Ok(sc) = canned::shortcut(typed) else { return Ok(None) };
    let claim = read::<Shortcut>(state, canned::claim_stream_key(user, &sc)).await?;
    if let Some(id) = claim.state.holder {
        if let Some(c) = usable(state, user, id).await? {
            return Ok(Some(c));
        }
    }
    let shared = store::views::list_all(state.views.as_ref(), VIEW, Some(SHARED)).await?;
    for d in shared.into_iter().filter(|d| d.sort_key == sc) {
        let Ok(summary) = serde_json::from_value::<CannedSummary>(d.body) else { continue };
        if let Some(c) = usable(state, user, summary.canned_response_id).await? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Counts a use of a response in a conversation (after the message is written).
pub async fn count_use(
    state: &AppState,
    ctx: &Context,
    id: Uuid,
    by: Uuid,
    session_id: Uuid,
) -> Result<Outcome, Problem> {
    let at = ctx.now;
    let stream = stream_id::<CannedResponse>(id);
    execute::<CannedResponse, CannedError>(state.events.as_ref(), &stream, ctx, None, |c| {
        canned::use_in(c, by, session_id, at)
    })
    .await
    .map_err(refused)
}

fn by_use(a: &CannedSummary, b: &CannedSummary) -> std::cmp::Ordering {
    b.use_count.cmp(&a.use_count).then(b.last_used_at.cmp(&a.last_used_at)).then(a.shortcut.cmp(&b.shortcut))
}

/// The caller's own and the shared responses whose shortcut starts with `prefix`, most
/// used first (then most recently used, then by shortcut).
pub async fn suggestions(state: &AppState, user: Uuid, prefix: &str) -> Result<Vec<CannedSummary>, Problem> {
    let mut docs = store::views::list_all(state.views.as_ref(), VIEW, Some(&user.to_string())).await?;
    docs.extend(store::views::list_all(state.views.as_ref(), VIEW, Some(SHARED)).await?);
    let mut out: Vec<CannedSummary> = docs
        .into_iter()
        .filter(|d| d.sort_key.starts_with(prefix))
        .filter_map(|d| serde_json::from_value(d.body).ok())
        .collect();
    out.sort_by(by_use);
    Ok(out)
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
    // Refuse bad input and forbidden requests before claiming anything.
    canned::create(&CannedResponse::default(), editor(&caller), &new)?;
    if owner != caller.user_id {
        let u = state.users.get(state.events.as_ref(), owner).await?;
        if !u.exists() || !u.active {
            return Err(invalid(vec![Invalid::new("owner_id", "is not an active user")]));
        }
    }
    let sc = canned::shortcut(&new.shortcut).map_err(|e| invalid(vec![e]))?;
    // A retry (same Idempotency-Key) whose response exists answers as the first request
    // did, whatever its body: it must not claim another shortcut on the way.
    if !read::<CannedResponse>(&state, id).await?.state.exists() {
        claim(&state, &ctx, owner, &sc, id).await?;
    }
    let created = write(&state, &ctx, id, None, |c| canned::create(c, editor(&caller), &new)).await;
    let (outcome, _, after) = match created {
        Ok(done) => done,
        Err(p) => {
            release(&state, &ctx, owner, &sc, id).await?;
            return Err(p);
        }
    };
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
        let docs = store::views::list_all(state.views.as_ref(), VIEW, None).await?;
        let mut found: Vec<CannedSummary> = docs
            .into_iter()
            .filter(|d| d.sort_key.starts_with(&prefix))
            .filter_map(|d| serde_json::from_value(d.body).ok())
            .collect();
        found.sort_by(by_use);
        found
    } else {
        suggestions(&state, caller.user_id, &prefix).await?
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
    let (c, version) = current(&state, id).await?;
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
    let (now, version) = current(&state, id).await?;
    // A stale edit is refused before a new shortcut is claimed (and given back).
    if expected.is_some_and(|e| e != version) {
        return Err(refused::<CannedError>(commands::CommandError::Conflict { current: Some(version) }));
    }
    let by = editor(&caller);
    let decide = |c: &CannedResponse| -> Result<Vec<canned::CannedEvent>, CannedError> {
        let mut events = canned::edit(c, by, patch.shortcut.as_deref(), patch.text.as_deref())?;
        if let Some(shared) = patch.shared {
            let mut after = c.clone();
            events.iter().for_each(|e| after.apply(e));
            events.extend(canned::set_shared(&after, by, shared)?);
        }
        Ok(events)
    };
    // Refuse bad input and forbidden requests before claiming anything.
    decide(&now)?;
    let ctx = context(&state, caller.actor(), &headers);
    let renamed_to = match patch.shortcut.as_deref().map(canned::shortcut).transpose() {
        Ok(Some(sc)) if sc != now.shortcut => Some(sc),
        Ok(_) => None,
        Err(e) => return Err(invalid(vec![e])),
    };
    if let Some(sc) = &renamed_to {
        claim(&state, &ctx, now.owner_id, sc, id).await?;
    }
    let (outcome, before, after) = match write(&state, &ctx, id, expected, decide).await {
        Ok(done) => done,
        Err(p) => {
            if let Some(sc) = &renamed_to {
                release(&state, &ctx, now.owner_id, sc, id).await?;
            }
            return Err(p);
        }
    };
    if before.shortcut != after.shortcut {
        release(&state, &ctx, before.owner_id, &before.shortcut, id).await?;
    }
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
    let by = editor(&caller);
    let (outcome, before, _) = write(&state, &ctx, id, expected, |c| canned::delete(c, by)).await?;
    release(&state, &ctx, before.owner_id, &before.shortcut, id).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    mark_position(&mut res, outcome.position);
    Ok(res)
}
