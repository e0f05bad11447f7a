//! The audit trail (`GET /api/v1/audit`, admins) and the change history of one resource
//! (`GET /api/v1/{channels,users,chatbots,conversations}/{id}/history`).
//!
//! The trail is a view (filters across everything); one resource's history is folded straight
//! from its stream with the same code (`projections::audit::history`), so it is always
//! current and exactly what the log holds.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::audit::history;
use domain::channel::Channel;
use domain::chatbot::Chatbot;
use domain::session::Session;
use domain::user::User;
use projections::audit::{AuditEntry, AUDITED, VIEW};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::path_id;
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(trail))
        .route("/api/v1/channels/{id}/history", get(channel_history))
        .route("/api/v1/users/{id}/history", get(user_history))
        .route("/api/v1/chatbots/{id}/history", get(chatbot_history))
        .route("/api/v1/conversations/{id}/history", get(conversation_history))
}

/// A page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Who did what and when, across channels, users, chatbot scripts and canned responses, with
/// what each event changed in the resource, setting by setting and item by item, before and
/// after (secrets redacted). Filters: `actor` (a user
/// id), `resource` (`channel`, `user`, `chatbot`, `canned`), `event_type`, `from`/`to`
/// (RFC 3339, inclusive); `cursor`, `limit` (default 50, at most 200).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    responses((status = 200, body = AuditPage), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn trail(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<AuditPage>, Problem> {
    caller.require_admin()?;
    let actor: Option<Uuid> = q.parse("actor", "a user id");
    let resource = q.text("resource");
    if let Some(r) = resource.as_deref().filter(|r| !AUDITED.contains(r)) {
        q.error("resource", format!("'{r}' is not one of {}", AUDITED.join(", ")));
    }
    let event_type = q.text("event_type");
    let from: Option<DateTime<Utc>> = q.parse("from", "an RFC 3339 time");
    let to: Option<DateTime<Utc>> = q.parse("to", "an RFC 3339 time");
    let cursor = q.text("cursor");
    let min_position = q.parse("min_position", "a position (TX:POS)");
    let limit = q.limit(50, 200);
    q.finish()?;
    wait_for_view(&state, "audit", min_position).await?;

    let keeps = |e: &AuditEntry| {
        actor.is_none_or(|a| e.actor.get("id").and_then(|i| i.as_str()) == Some(a.to_string().as_str()))
            && resource.as_deref().is_none_or(|r| e.resource == r)
            && event_type.as_deref().is_none_or(|t| e.event_type == t)
            && from.is_none_or(|f| e.recorded_at >= f)
            && to.is_none_or(|t| e.recorded_at <= t)
    };
    let mut after = cursor.as_deref().and_then(|c| c.split_once('~')).map(|(s, i)| (s.to_string(), i.to_string()));
    let (mut entries, mut next_cursor) = (Vec::new(), None);
    'pages: loop {
        let page = state.views.list(VIEW, None, after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.sort_key.clone(), last.id.clone()));
        for d in page {
            let key = format!("{}~{}", d.sort_key, d.id);
            let Ok(e) = serde_json::from_value::<AuditEntry>(d.body) else { continue };
            // Everything after this one is older.
            if from.is_some_and(|f| e.recorded_at < f) {
                break 'pages;
            }
            if !keeps(&e) {
                continue;
            }
            if entries.len() == limit {
                break 'pages;
            }
            entries.push(e);
            next_cursor = Some(key);
        }
    }
    if entries.len() < limit {
        next_cursor = None;
    }
    Ok(Json(AuditPage { entries, next_cursor }))
}

/// The change history of a channel (admins).
#[utoipa::path(get, path = "/api/v1/channels/{id}/history", tag = "audit",
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn channel_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "channel")?;
    Ok(Json(history::<Channel>(&state, id).await?))
}

/// The change history of a user (admins, or the user themselves).
#[utoipa::path(get, path = "/api/v1/users/{id}/history", tag = "audit",
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn user_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    let id = path_id(&id, "user")?;
    if id != caller.user_id {
        caller.require_admin()?;
    }
    Ok(Json(history::<User>(&state, id).await?))
}

/// The change history of a chatbot script (admins).
#[utoipa::path(get, path = "/api/v1/chatbots/{id}/history", tag = "audit",
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn chatbot_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "chatbot")?;
    Ok(Json(history::<Chatbot>(&state, id).await?))
}

/// Everything that happened in a conversation (admins, and the operators who handled it).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/history", tag = "audit",
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn conversation_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    let id = path_id(&id, "conversation")?;
    let (session, _) = commands::conversations::session(&state, id).await?;
    if !caller.is_admin() && !session.handlers.contains(&caller.user_id) {
        return Err(Problem::new(
            axum::http::StatusCode::FORBIDDEN,
            "not-your-conversation",
            "only the operators who handled this conversation (and admins) may read its history",
        ));
    }
    Ok(Json(history::<Session>(&state, id).await?))
}
