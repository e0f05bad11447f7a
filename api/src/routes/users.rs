//! Users: accounts (admins), one's own profile, password and status (everyone).
//!
//! Single users are read from their stream, so a response and its `ETag` (the stream
//! version) are always current; the list comes from the `users` view (`min_position` waits
//! for it). Every write answers with `ETag` and, when it wrote, `X-Livechat-Position`: the
//! position to pass as `min_position` to read the views after it.
//!
//! The account operations (`create_user`, `set_password`, ...) are also what `livechat user`
//! runs directly on the store.

use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use commands::{execute, stream_id, Context, Outcome};
use domain::metadata::Actor;
use domain::user::{self, claim_login, Login, ProfileInput, Role, Status, StatusReason, User, UserError, UserEvent};
use domain::values::{Email, Invalid};
use domain::Aggregate;
use projections::users::{UserSummary, VIEW};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use store::{Direction, EventFilter, Position, ReadAll};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{check_password, hash_password, verify_password, Caller};
use crate::commanding::{context, etag, if_match, invalid, json_body, mark_position, path_id, read, refused, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::routes::auth::{throttle_key, too_many};
use crate::routes::streams::wait_for_view;
use crate::throttle::ClientAddr;
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

// ---------------------------------------------------------------------------------------------
// Bodies

/// A new user. Every field is checked and every error reported at once (422).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// An email address; unique among users.
    #[serde(default)]
    pub login: String,
    /// 10 to 200 characters.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub name: String,
    /// The name visitors see.
    #[serde(default)]
    pub chat_name: Option<String>,
    /// Language codes such as `en` or `fr_BE`.
    #[serde(default)]
    pub languages: Vec<String>,
    /// ISO 3166-1 alpha-2 code.
    #[serde(default)]
    pub country: Option<String>,
    /// `admin` or `operator` (the default).
    #[serde(default)]
    #[schema(example = "operator")]
    pub role: Option<String>,
}

/// Changes to a profile: absent fields keep their value; `chat_name` and `country` are
/// cleared by `null` or `""`. Only an administrator may change `role`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub chat_name: Option<Option<String>>,
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    /// `admin` or `operator`.
    #[serde(default)]
    #[schema(example = "admin")]
    pub role: Option<String>,
}

/// A field that is present, possibly `null` (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A new password. Users changing their own must give the current one; an administrator
/// may set anyone else's without it. Every token of the user is revoked.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// 10 to 200 characters.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub current_password: Option<String>,
}

/// The caller's presence status.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `online`, `away` or `offline`.
    #[serde(default)]
    #[schema(example = "away")]
    pub status: String,
}

/// A page of users, ordered by login.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query parameters of `GET /api/v1/users` (documentation; parsing is in the handler).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UsersQuery {
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Read-your-writes: wait (up to 5 s) until the view includes this position.
    min_position: Option<String>,
}

/// A value of a domain enum (`Role`, `Status`) from its serialized name.
fn choice<T: DeserializeOwned>(field: &str, raw: &str, expected: &str) -> Result<T, Invalid> {
    serde_json::from_value(serde_json::Value::String(raw.trim().to_lowercase()))
        .map_err(|_| Invalid::new(field, format!("'{raw}' is not {expected}")))
}

fn role(raw: &str) -> Result<Role, Invalid> {
    choice("role", raw, "admin or operator")
}

fn required(field: &str, raw: &str) -> Result<(), Invalid> {
    if raw.trim().is_empty() {
        Err(Invalid::new(field, "is required"))
    } else {
        Ok(())
    }
}

impl NewUser {
    /// Validates every field, collecting all errors.
    fn parse(&self) -> Result<(Email, user::Profile, Role), Vec<Invalid>> {
        let mut errors = Vec::new();
        let login = required("login", &self.login)
            .and_then(|_| Email::parse("login", &self.login))
            .map_err(|e| errors.push(e))
            .ok();
        let _ = required("password", &self.password)
            .and_then(|_| check_password("password", &self.password))
            .map_err(|e| errors.push(e));
        let profile = ProfileInput {
            name: self.name.clone(),
            chat_name: self.chat_name.clone(),
            languages: self.languages.clone(),
            country: self.country.clone(),
        }
        .parse()
        .map_err(|e| errors.extend(e))
        .ok();
        let role = self.role.as_deref().map(role).transpose().map_err(|e| errors.push(e)).ok().flatten();
        match (login, profile) {
            (Some(login), Some(profile)) if errors.is_empty() => Ok((login, profile, role.unwrap_or_default())),
            _ => Err(errors),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Account operations, shared with `livechat user`

/// A user after a command, and what the command did.
#[derive(Clone, Debug)]
pub struct Written {
    pub user: UserSummary,
    pub outcome: Outcome,
}

/// How a user looks in responses: never the password hash or tokens.
pub fn summary(u: &User, version: u64) -> UserSummary {
    UserSummary {
        user_id: u.id.unwrap_or_default(),
        name: u.name.clone(),
        login: u.login.as_ref().map(|l| l.as_str().to_string()).unwrap_or_default(),
        chat_name: u.chat_name.clone(),
        display_name: u.display_name().to_string(),
        languages: u.languages.clone(),
        country: u.country.as_ref().map(|c| c.to_string()),
        role: u.role,
        active: u.active,
        status: u.status,
        version,
    }
}

/// The context of a command run by the system (the command line).
pub fn system_context(state: &AppState) -> Context {
    Context::new(Actor::system(), state.clock.now())
}

/// A user as stored now, with their stream version; 404 if there is none.
pub async fn current(state: &AppState, id: Uuid) -> Result<(User, u64), Problem> {
    let loaded = read::<User>(state, id).await?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok((loaded.state, v)),
        _ => Err(Problem::not_found("no such user")),
    }
}

/// Runs a user decision and answers with the user as decided.
async fn write(
    state: &AppState,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    decide: impl Fn(&User) -> Result<Vec<UserEvent>, UserError>,
) -> Result<Written, Problem> {
    let decided: Mutex<Option<User>> = Mutex::new(None);
    let outcome = execute::<User, UserError>(state.events.as_ref(), &stream_id::<User>(id), ctx, expected, |u| {
        let events = decide(u)?;
        let mut after = u.clone();
        for e in &events {
            after.apply(e);
        }
        *decided.lock().unwrap_or_else(|p| p.into_inner()) = Some(after);
        Ok(events)
    })
    .await
    .map_err(refused)?;
    let user = match decided.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(u) => u,
        // A retried request (same Idempotency-Key): nothing was decided, show what is stored.
        None => current(state, id).await?.0,
    };
    Ok(Written { user: summary(&user, outcome.version.unwrap_or_default()), outcome })
}

/// Claims the login, then creates the user. With an `Idempotency-Key` a retry lands on the
/// same user and answers as the first request did.
pub async fn create_user(state: &AppState, ctx: &Context, new: NewUser) -> Result<Written, Problem> {
    let (login, profile, role) = new.parse().map_err(invalid)?;
    let id = ctx.new_id("user");
    let hash = hash_password(new.password).await?;
    // A retry (same Idempotency-Key) whose user exists answers as the first request did,
    // whatever its body: it must not claim another login on the way.
    if !read::<User>(state, id).await?.state.exists() {
        execute::<Login, _>(state.events.as_ref(), &stream_id::<Login>(login.as_str()), ctx, None, |l| {
            claim_login(l, id)
        })
        .await
        .map_err(refused)?;
    }
    write(state, ctx, id, None, |u| user::create(u, id, login.clone(), profile.clone(), role, hash.clone())).await
}

/// The user who owns `login`; 404 if nobody does.
pub async fn find_by_login(state: &AppState, login: &str) -> Result<Uuid, Problem> {
    let email = Email::parse("login", login).map_err(|e| invalid(vec![e]))?;
    let claim = read::<Login>(state, email.as_str()).await?;
    claim.state.owner.ok_or_else(|| Problem::not_found(format!("no user has the login {}", email.as_str())))
}

/// Sets a user's password (10 to 200 characters), which revokes their tokens.
pub async fn set_password(
    state: &AppState,
    ctx: &Context,
    id: Uuid,
    password: String,
    expected: Option<u64>,
) -> Result<Written, Problem> {
    check_password("password", &password).map_err(|e| invalid(vec![e]))?;
    let hash = hash_password(password).await?;
    write(state, ctx, id, expected, |u| user::change_password(u, hash.clone())).await
}

/// Deactivates a user (revoking their tokens) and makes them leave every channel.
pub async fn deactivate_user(state: &AppState, ctx: &Context, id: Uuid) -> Result<Written, Problem> {
    let written = write(state, ctx, id, None, user::deactivate).await?;
    // Also when already deactivated: finishes a deactivation interrupted before this step.
    crate::presence::leave_all(state, ctx, id, domain::channel::LeaveReason::Deactivated).await?;
    Ok(written)
}

/// Lets a deactivated user log in again.
pub async fn reactivate_user(state: &AppState, ctx: &Context, id: Uuid) -> Result<Written, Problem> {
    write(state, ctx, id, None, user::reactivate).await
}

/// Every user, by login, folded from the log (always current, whatever the views' lag).
pub async fn all_users(state: &AppState) -> Result<Vec<UserSummary>, Problem> {
    let mut users: std::collections::HashMap<String, (User, u64)> = Default::default();
    let filter = EventFilter { category: Some(User::CATEGORY.to_string()), ..Default::default() };
    let mut from = Position::START;
    loop {
        let q = ReadAll { from: Some(from), direction: Direction::Forward, limit: 1000, filter: filter.clone() };
        let page = state.events.read_all(&q).await?;
        let Some(last) = page.last() else { break };
        from = last.position;
        for e in &page {
            let event: UserEvent = domain::aggregate::decode_versioned(&e.event_type, e.schema_version, &e.data)
                .map_err(|err| {
                    tracing::error!(error = %err, stream = %e.stream_id, "stored user event unreadable");
                    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
                })?;
            let (u, v) = users.entry(e.stream_id.clone()).or_default();
            u.apply(&event);
            *v = e.stream_version;
        }
    }
    let mut all: Vec<UserSummary> = users.values().filter(|(u, _)| u.exists()).map(|(u, v)| summary(u, *v)).collect();
    all.sort_by(|a, b| a.login.cmp(&b.login));
    Ok(all)
}

// ---------------------------------------------------------------------------------------------
// Responses

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
    let (u, version) = current(state, id).await?;
    let mut res = Json(summary(&u, version)).into_response();
    if let Some((k, v)) = etag(Some(version)) {
        res.headers_mut().insert(k, v);
    }
    Ok(res)
}

/// The cursor after a document: its sort key (the login) and id, opaque to clients.
fn cursor_of(sort_key: &str, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{sort_key}\n{id}"))
}

fn parse_cursor(raw: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).ok()?;
    let (sort_key, id) =
        String::from_utf8(bytes).ok()?.split_once('\n').map(|(s, i)| (s.to_string(), i.to_string()))?;
    Some((sort_key, id))
}

// ---------------------------------------------------------------------------------------------
// Handlers

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
    let written = create_user(&state, &ctx, new).await?;
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
    let (now, _) = current(state, id).await?;
    // Validate the submitted fields (absent ones are the stored, valid values).
    let text = |patched: &Option<Option<String>>, stored: &Option<String>| match patched {
        Some(v) => v.clone(),
        None => stored.clone(),
    };
    let input = ProfileInput {
        name: patch.name.clone().unwrap_or_else(|| now.name.clone()),
        chat_name: text(&patch.chat_name, &now.chat_name),
        languages: patch.languages.clone().unwrap_or_else(|| now.languages.clone()),
        country: text(&patch.country, &now.country.as_ref().map(|c| c.to_string())),
    };
    let mut errors = Vec::new();
    let parsed = input.parse().map_err(|e| errors.extend(e)).ok();
    let new_role = patch.role.as_deref().map(role).transpose().map_err(|e| errors.push(e)).ok().flatten();
    let Some(parsed) = parsed.filter(|_| errors.is_empty()) else { return Err(invalid(errors)) };
    if id == caller.user_id && new_role.is_some_and(|r| r != Role::Admin) && caller.is_admin() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "cannot-demote-self",
            "administrators cannot take away their own role; ask another administrator",
        ));
    }
    let ctx = context(state, caller.actor(), headers);
    let written = write(state, &ctx, id, expected, |u| {
        // Fields not in the patch keep the value they have when the command is decided.
        let profile = user::Profile {
            name: if patch.name.is_some() { parsed.name.clone() } else { u.name.clone() },
            chat_name: if patch.chat_name.is_some() { parsed.chat_name.clone() } else { u.chat_name.clone() },
            languages: if patch.languages.is_some() { parsed.languages.clone() } else { u.languages.clone() },
            country: if patch.country.is_some() { parsed.country.clone() } else { u.country.clone() },
        };
        let mut events = user::update_profile(u, profile)?;
        if let Some(r) = new_role {
            let after = {
                let mut a = u.clone();
                events.iter().for_each(|e| a.apply(e));
                a
            };
            events.extend(user::change_role(&after, r)?);
        }
        Ok(events)
    })
    .await?;
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
    let mut errors = Vec::new();
    let _ = check_password("password", &change.password).map_err(|e| errors.push(e));
    let current_password = change.current_password.filter(|p| !p.is_empty());
    if own && current_password.is_none() {
        errors.push(Invalid::new("current_password", "is required to change your own password"));
    }
    if !errors.is_empty() {
        return Err(invalid(errors).into_response());
    }
    if let (true, Some(given)) = (own, current_password) {
        // Guessing the current password with a stolen token counts against the login.
        let login = caller.user.login.as_ref().map(|l| l.as_str().to_string()).unwrap_or_default();
        let attempt = state.throttle.begin(&throttle_key(&login), address, state.clock.now()).map_err(too_many)?;
        if !verify_password(given, caller.user.password_hash.clone()).await {
            return Err(
                Problem::new(StatusCode::FORBIDDEN, "wrong-password", "the current password is wrong").into_response()
            );
        }
        state.throttle.succeeded(attempt);
    }
    let ctx = context(&state, caller.actor(), &headers);
    let expected = if_match(&headers).map_err(IntoResponse::into_response)?;
    let written =
        set_password(&state, &ctx, id, change.password, expected).await.map_err(IntoResponse::into_response)?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    decorate(&mut res, written.outcome);
    Ok(res)
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
    if id == caller.user_id {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "cannot-deactivate-self",
            "administrators cannot deactivate themselves; ask another administrator",
        ));
    }
    let ctx = context(&state, caller.actor(), &headers);
    Ok(respond(StatusCode::OK, &deactivate_user(&state, &ctx, id).await?))
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
    Ok(respond(StatusCode::OK, &reactivate_user(&state, &ctx, id).await?))
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
    let status: Status = choice("status", &change.status, "online, away or offline").map_err(|e| invalid(vec![e]))?;
    let ctx = context(&state, caller.actor(), &headers);
    let written =
        write(&state, &ctx, caller.user_id, None, |u| user::set_status(u, status, StatusReason::Chosen)).await?;
    if status == Status::Online {
        // Someone is available: conversations waiting in their channels can be routed.
        commands::conversations::dispatch_for(&state, &ctx, caller.user_id).await?;
    }
    Ok(respond(StatusCode::OK, &written))
}
