//! A script's own routes: list, create, show, change.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use commands::chatbots::{self as use_case, ScriptEdit};
use commands::Outcome;
use store::Position;

use super::wire::{guard, respond, written, ChatbotDetail, ChatbotPage, ChatbotPatch, NewChatbot};
use crate::auth::Caller;
use crate::commanding::{context, json_body, path_id, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::AppState;

/// Scripts, by title (from the `chatbots` view; `min_position` waits for a write).
#[utoipa::path(get, path = "/api/v1/chatbots", tag = "chatbots",
    params(("min_position" = Option<String>, Query, description = "wait (up to 5 s) until the view includes this position")),
    responses((status = 200, body = ChatbotPage),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn list(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<ChatbotPage>, Problem> {
    let min_position: Option<Position> = q.parse("min_position", "a position (TX:POS)");
    q.finish()?;
    caller.require_admin()?;
    wait_for_view(&state, "chatbots", min_position).await?;
    Ok(Json(ChatbotPage { chatbots: projections::chatbots::all(state.views.as_ref()).await? }))
}

/// Creates a script (no steps yet).
#[utoipa::path(post, path = "/api/v1/chatbots", tag = "chatbots", request_body = NewChatbot,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key returns the first result")),
    responses((status = 201, body = ChatbotDetail, headers(("ETag" = String), ("Location" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body<NewChatbot>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let b = json_body(body)?;
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let id = use_case::new_id(&ctx);
    let done = use_case::create(&state, &ctx, expected, &b.title, b.author_name.as_deref(), b.active.unwrap_or(true));
    Ok(written(true, id, done.await?))
}

/// A script with its steps, answers and warnings, from its stream.
#[utoipa::path(get, path = "/api/v1/chatbots/{id}", tag = "chatbots", params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "chatbot")?;
    let (c, v) = use_case::current(&state, id).await?;
    Ok(respond(StatusCode::OK, Outcome { version: Some(v), position: None, written: 0, recorded_at: None }, &c, id))
}

/// Changes the title, the author name or the active flag (`If-Match` refuses a stale edit).
#[utoipa::path(patch, path = "/api/v1/chatbots/{id}", tag = "chatbots", request_body = ChatbotPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<ChatbotPatch>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "chatbot")?;
    let p = json_body(body)?;
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let change = ScriptEdit::Change { title: p.title, author_name: p.author_name, active: p.active };
    Ok(written(false, id, use_case::edit(&state, &ctx, id, expected, &change).await?))
}
