//! The operators' side of conversations: inbox, queue, history, messages (with canned
//! responses and chat commands), seen marks, taking from the queue, transfer and close.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use domain::chat_command::{self, ChatCommand, Parsed};
use domain::session::{Party, Session, SessionStatus};
use projections::conversations::{ConversationSummary, VIEW};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::chat_commands;
use crate::commanding::{context, json_body, mark_position, path_id, Body};
use crate::history::{self, MessageView};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::routes::sessions::{history_params, posted, MessagePage, SeenUpTo};
use crate::AppState;
use commands::conversations as conversation;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations", get(inbox))
        .route("/api/v1/channels/{id}/queue", get(queue))
        .route("/api/v1/conversations/{id}", get(show))
        .route("/api/v1/conversations/{id}/messages", get(messages).post(write))
        .route("/api/v1/conversations/{id}/messages/{message_id}", patch(edit).delete(delete))
        .route("/api/v1/conversations/{id}/seen", post(seen))
        .route("/api/v1/conversations/{id}/take", post(take))
        .route("/api/v1/conversations/{id}/transfer", post(transfer))
        .route("/api/v1/conversations/{id}/close", post(close))
}

fn me(caller: &Caller) -> Party {
    Party::Operator { id: caller.user_id }
}

/// A page of the inbox.
#[derive(Serialize, ToSchema)]
pub struct Inbox {
    pub conversations: Vec<ConversationSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The caller's conversations, newest activity first, each with its unread count; filter by
/// `channel` and `state` (`active`, `waiting`, `closed`); cursor-paginated.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations",
    responses((status = 200, body = Inbox), (status = 401, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn inbox(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<Inbox>, Problem> {
    let channel: Option<Uuid> = q.parse("channel", "a channel id");
    let status = match q.text("state").as_deref() {
        None => None,
        Some("active") => Some(SessionStatus::Active),
        Some("waiting") => Some(SessionStatus::Waiting),
        Some("closed") => Some(SessionStatus::Closed),
        Some(other) => {
            q.error("state", format!("'{other}' is not active, waiting or closed"));
            None
        }
    };
    let cursor = q.text("cursor");
    let min_position = q.parse("min_position", "a position (TX:POS)");
    let limit = q.limit(50, 200);
    q.finish()?;
    wait_for_view(&state, "conversations", min_position).await?;
    let partition = caller.user_id.to_string();
    let mut after = cursor.as_deref().and_then(|c| c.split_once('.')).map(|(s, i)| (s.to_string(), i.to_string()));
    let mut out = Vec::new();
    let mut next_cursor = None;
    'pages: loop {
        let page = state
            .views
            .list(VIEW, Some(&partition), after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 200)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.sort_key.clone(), last.id.clone()));
        for d in page {
            let key = format!("{}.{}", d.sort_key, d.id);
            let Ok(c) = serde_json::from_value::<ConversationSummary>(d.body) else { continue };
            if channel.is_some_and(|ch| ch != c.channel_id) || status.is_some_and(|s| s != c.status) {
                continue;
            }
            if out.len() == limit {
                break 'pages;
            }
            out.push(c);
            next_cursor = Some(key);
        }
        next_cursor = None;
    }
    if out.len() < limit {
        next_cursor = None;
    }
    Ok(Json(Inbox { conversations: out, next_cursor }))
}

/// A channel's waiting conversations, oldest first (its operators and admins).
#[utoipa::path(get, path = "/api/v1/channels/{id}/queue", tag = "conversations",
    responses((status = 200, body = Inbox), (status = 403, body = ProblemDocument)))]
pub async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Inbox>, Problem> {
    let channel_id = path_id(&id, "channel")?;
    let c = conversation::channel(&state, channel_id).await?;
    if !caller.is_admin() && !c.operators.contains(&caller.user_id) {
        return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "only the channel's operators see its queue"));
    }
    let conversations = projections::conversations::queue_all(state.views.as_ref(), channel_id).await?;
    Ok(Json(Inbox { conversations, next_cursor: None }))
}

/// A conversation for its operators.
#[derive(Serialize, ToSchema)]
pub struct ConversationDetail {
    pub session_id: Uuid,
    pub channel_id: Uuid,
    #[schema(value_type = String, example = "active")]
    pub status: SessionStatus,
    pub operator_id: Option<Uuid>,
    /// Every operator who handled it, in order.
    pub handlers: Vec<Uuid>,
    /// Pages the visitor visited, in order.
    pub pages: Vec<String>,
    pub seen_by_operator: Option<Uuid>,
    pub seen_by_visitor: Option<Uuid>,
    /// What a chatbot collected before handing over, in order (empty without a bot).
    pub collected: Vec<CollectedAnswer>,
}

/// One answer a chatbot collected.
#[derive(Serialize, ToSchema)]
pub struct CollectedAnswer {
    pub question: String,
    /// `email`, `phone`, `choice` or `text`.
    pub kind: &'static str,
    pub answer: String,
}

fn collected(s: &Session) -> Vec<CollectedAnswer> {
    use domain::chatbot::StepType;
    let Some(run) = &s.bot else { return vec![] };
    run.answers
        .iter()
        .map(|a| CollectedAnswer {
            question: a.question.clone(),
            kind: match a.step_type {
                StepType::QuestionEmail => "email",
                StepType::QuestionPhone => "phone",
                StepType::QuestionSelection => "choice",
                _ => "text",
            },
            answer: a.answer.clone(),
        })
        .collect()
}

/// The conversation (read from its stream).
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    responses((status = 200, body = ConversationDetail), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConversationDetail>, Problem> {
    let (session_id, s) = crate::auth::readable(&state, &caller, &id).await?;
    Ok(Json(ConversationDetail {
        collected: collected(&s),
        session_id,
        channel_id: s.channel_id.unwrap_or_default(),
        status: s.status,
        operator_id: s.operator,
        handlers: s.handlers,
        pages: s.pages,
        seen_by_operator: s.seen_by_operator,
        seen_by_visitor: s.seen_by_visitor,
    }))
}

/// The history, for its operators and admins: `?after=`/`?before=` a message id, `limit`.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    responses((status = 200, body = MessagePage), (status = 403, body = ProblemDocument)))]
pub async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    mut q: Params,
) -> Result<Json<MessagePage>, Problem> {
    let (session_id, _) = crate::auth::readable(&state, &caller, &id).await?;
    let (after, before, limit) = history_params(&mut q);
    q.finish()?;
    let all = history::history(&state, session_id).await?;
    Ok(Json(MessagePage { messages: history::page(all, after, before, limit)? }))
}

/// What an operator posts: a text, or a canned response by id. A text that is exactly a
/// known `:shortcut` (the caller's own or a shared one) is replaced by its response; a text
/// starting with `/` is a chat command (`//` posts a text starting with `/`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorMessage {
    /// Client-made; makes a retry idempotent.
    pub message_id: Option<Uuid>,
    /// Plain text, at most 4,000 characters; absent with `canned_response_id`.
    pub text: Option<String>,
    /// One of the caller's canned responses or a shared one: its text is posted.
    pub canned_response_id: Option<Uuid>,
}

/// What an operator's post becomes: a message (and the canned response it came from).
enum Post {
    Message { text: String, canned: Option<Uuid> },
    Command(ChatCommand),
}

async fn interpret(state: &AppState, caller: &Caller, m: &OperatorMessage) -> Result<Post, Problem> {
    let field = |f: &str, msg: &str| crate::commanding::invalid(vec![domain::values::Invalid::new(f, msg)]);
    match (m.canned_response_id, m.text.as_deref()) {
        (Some(_), Some(t)) if !t.is_empty() => Err(field("text", "give either text or canned_response_id")),
        (Some(id), _) => match commands::canned::usable(state, caller.user_id, id).await? {
            Some(c) => Ok(Post::Message { text: c.text, canned: Some(id) }),
            None => Err(field("canned_response_id", "is not one of your canned responses nor a shared one")),
        },
        (None, None) => Err(field("text", "is required")),
        (None, Some(t)) => Ok(match chat_command::parse(t) {
            Parsed::Command(cmd) => Post::Command(cmd),
            Parsed::Text(text) => match text.trim().strip_prefix(':') {
                Some(typed) => match commands::canned::by_shortcut(state, caller.user_id, typed).await? {
                    Some(c) => Post::Message { text: c.text, canned: c.id },
                    None => Post::Message { text, canned: None },
                },
                None => Post::Message { text, canned: None },
            },
        }),
    }
}

/// The operator of the conversation writes (201 with the message), or runs a chat command
/// (200 with its answer, shown to the caller only and not stored as a message).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations", request_body = OperatorMessage,
    responses((status = 201, body = MessageView, headers(("X-Livechat-Position" = String))),
              (status = 200, body = chat_commands::CommandAnswer, description = "a chat command's answer (nothing posted)"),
              (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument),
              (status = 422, body = ProblemDocument)))]
pub async fn write(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<OperatorMessage>,
) -> Result<Response, Problem> {
    let session_id = path_id(&id, "conversation")?;
    let m = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let (text, canned_id) = match interpret(&state, &caller, &m).await? {
        Post::Command(cmd) => return chat_commands::run(&state, &ctx, &caller, session_id, cmd).await,
        Post::Message { text, canned } => (text, canned),
    };
    let message_id = m.message_id.unwrap_or_else(Uuid::now_v7);
    let decided = conversation::operator_post(&state, &ctx, caller.user_id, session_id, message_id, &text).await?;
    let written = decided.0.written > 0;
    let mut res = posted(&state, session_id, message_id, decided).await?;
    if let (Some(canned_id), true) = (canned_id, written) {
        // Counted after the message is stored; a failure here must not fail the post.
        match commands::canned::count_use(&state, &ctx, canned_id, caller.user_id, session_id).await {
            // Later in the log than the message: `min_position` then waits for both.
            Ok(outcome) => mark_position(&mut res, outcome.position),
            Err(e) => tracing::warn!(canned = %canned_id, error = %e, "canned response use not counted"),
        }
    }
    Ok(res)
}

/// A new text for a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    pub text: String,
}

/// The author edits their message (the history marks it edited; the log keeps every version).
#[utoipa::path(patch, path = "/api/v1/conversations/{id}/messages/{message_id}", tag = "conversations", request_body = EditMessage,
    responses((status = 200, body = MessageView), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, message_id)): Path<(String, String)>,
    body: Body<EditMessage>,
) -> Result<Response, Problem> {
    let session_id = path_id(&id, "conversation")?;
    let message_id = path_id(&message_id, "message")?;
    let e = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let outcome = conversation::edit(&state, &ctx, caller.user_id, session_id, message_id, &e.text).await?;
    // The answer keeps the message's original time: read it from the stream.
    let mut res = Json(history::message(&state, session_id, message_id).await?).into_response();
    mark_position(&mut res, outcome.position);
    Ok(res)
}

/// The author deletes their message.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/messages/{message_id}", tag = "conversations",
    responses((status = 204), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let session_id = path_id(&id, "conversation")?;
    let message_id = path_id(&message_id, "message")?;
    let ctx = context(&state, caller.actor(), &headers);
    conversation::delete(&state, &ctx, caller.user_id, session_id, message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The operator has seen the messages up to `up_to` (the visitor sees it).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/seen", tag = "conversations", request_body = SeenUpTo,
    responses((status = 204), (status = 403, body = ProblemDocument)))]
pub async fn seen(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<SeenUpTo>,
) -> Result<StatusCode, Problem> {
    let session_id = path_id(&id, "conversation")?;
    let s = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    conversation::seen(&state, &ctx, me(&caller), session_id, s.up_to).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An operator of the channel takes a waiting conversation; of two trying at once, exactly
/// one gets it (409 `already-taken` for the other).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/take", tag = "conversations",
    responses((status = 200, body = ConversationDetail), (status = 409, body = ProblemDocument)))]
pub async fn take(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ConversationDetail>, Problem> {
    // Not `readable`: once another operator won the race this is no longer a waiting
    // conversation, and the loser must hear "already taken", not "not yours".
    let session_id = path_id(&id, "conversation")?;
    let ctx = context(&state, caller.actor(), &headers);
    conversation::take(&state, &ctx, caller.user_id, caller.user.display_name(), session_id).await?;
    show(State(state), caller, Path(id)).await
}

/// Where to hand a conversation: another operator, another channel, or both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub operator_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
}

/// Hands the conversation to another operator (joined to the target channel) or to another
/// channel's queue; the conversation keeps who handled it when.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/transfer", tag = "conversations", request_body = Transfer,
    responses((status = 200, body = ConversationDetail), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<Transfer>,
) -> Result<Json<ConversationDetail>, Problem> {
    let t = json_body(body)?;
    let session_id = path_id(&id, "conversation")?;
    let ctx = context(&state, caller.actor(), &headers);
    let (by, admin) = (caller.user_id, caller.is_admin());
    conversation::hand_over(&state, &ctx, by, admin, session_id, t.operator_id, t.channel_id).await?;
    show(State(state), caller, Path(id)).await
}

/// Ends the conversation (its operator, or an admin).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/close", tag = "conversations",
    responses((status = 204), (status = 403, body = ProblemDocument)))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let session_id = path_id(&id, "conversation")?;
    let ctx = context(&state, caller.actor(), &headers);
    conversation::close(&state, &ctx, me(&caller), caller.is_admin(), session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
