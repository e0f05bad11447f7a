//! The visitor's side of a conversation (public routes): start it, write, read the history,
//! report pages, mark seen, leave. After the start every route needs the visitor token the
//! start returned, which opens that one conversation only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Extension, Json, Router};
use domain::session::{self, Party, SessionStatus};
use domain::values::language;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commanding::{context, json_body, mark_position, path_id, Body};
use crate::history::{self, MessageView};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::visitor::{mint, VisitorCaller};
use crate::AppState;
use commands::conversations as conversation;

/// Odoo's words when nobody can answer.
pub const NOBODY_AVAILABLE: &str = "No available collaborator, please try again later.";

pub fn routes() -> Router<AppState> {
    use crate::routes::public::preflight;
    Router::new()
        .route("/api/v1/public/channels/{id}/sessions", post(start).options(preflight))
        .route("/api/v1/public/sessions/{id}", get(show).options(preflight))
        .route("/api/v1/public/sessions/{id}/messages", get(messages).post(write).options(preflight))
        .route("/api/v1/public/sessions/{id}/pages", post(visit).options(preflight))
        .route("/api/v1/public/sessions/{id}/seen", post(seen).options(preflight))
        .route("/api/v1/public/sessions/{id}/leave", post(leave).options(preflight))
        .route("/api/v1/public/sessions/{id}/bot/answer", post(bot_answer).options(preflight))
        .route("/api/v1/public/sessions/{id}/bot/restart", post(bot_restart).options(preflight))
        // The widget calls these from the sites it is embedded in (preflight included).
        .layer(middleware::from_fn(crate::routes::public::cors))
}

fn visitor_actor() -> domain::metadata::Actor {
    domain::metadata::Actor { kind: domain::metadata::ActorKind::Visitor, id: None }
}

/// What a visitor sends to start chatting.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Shown to operators; "Visitor #N" when absent.
    pub name: Option<String>,
    /// The page the chat starts on.
    pub url: Option<String>,
    /// The operator the widget remembers from an earlier chat.
    pub previous_operator_id: Option<Uuid>,
    /// Languages, best first (otherwise taken from `Accept-Language`).
    pub languages: Option<Vec<String>>,
}

/// The operator as the visitor sees them.
#[derive(Serialize, ToSchema)]
pub struct OperatorView {
    pub id: Uuid,
    /// The online chat name (never a login or an email).
    pub name: String,
}

/// A conversation as its visitor sees it.
#[derive(Serialize, ToSchema)]
pub struct VisitorSession {
    pub session_id: Uuid,
    pub channel_id: Uuid,
    #[schema(value_type = String, example = "active")]
    pub status: SessionStatus,
    pub operator: Option<OperatorView>,
    /// While waiting: 1 for the next conversation to be answered.
    pub queue_position: Option<usize>,
    /// Plain words for the visitor when nobody is available.
    pub notice: Option<&'static str>,
    /// The operator has seen the visitor's messages up to this one.
    pub seen_by_operator: Option<Uuid>,
    /// The chatbot answering, and the answer it expects.
    pub bot: Option<BotView>,
}

/// A chatbot's run as its visitor sees it.
#[derive(Serialize, ToSchema)]
pub struct BotView {
    /// The bot's name (the author of its messages).
    pub name: String,
    /// The step the bot waits on: answer it with `.../bot/answer`.
    pub expects: Option<ExpectedAnswer>,
    /// `running`, `forwarded`, `finished` or `redirected`.
    pub state: &'static str,
    /// Where a redirect answer sends the visitor.
    pub redirect_link: Option<String>,
}

/// The answer form of the step the bot waits on.
#[derive(Serialize, ToSchema)]
pub struct ExpectedAnswer {
    pub step_id: Uuid,
    /// `question_selection` (send `answer_id`), `question_email`, `question_phone`,
    /// `free_input_single`, `free_input_multi` (send `text`).
    #[schema(value_type = String)]
    pub step_type: domain::chatbot::StepType,
    pub message: String,
    /// The choices of a `question_selection` step.
    #[schema(value_type = Vec<Object>)]
    pub answers: Vec<domain::chatbot::Answer>,
}

fn bot_view(run: &session::BotRun) -> BotView {
    use domain::session::BotOutcome;
    let (state, redirect_link) = match &run.ended {
        None => ("running", None),
        Some(BotOutcome::Forwarded { .. }) => ("forwarded", None),
        Some(BotOutcome::Finished) => ("finished", None),
        Some(BotOutcome::Redirected { link }) => ("redirected", Some(link.clone())),
    };
    BotView {
        name: run.script.author_name.clone(),
        expects: run.awaited().map(|s| ExpectedAnswer {
            step_id: s.step_id,
            step_type: s.step_type,
            message: s.message.clone(),
            answers: s.answers.clone(),
        }),
        state,
        redirect_link,
    }
}

/// The start's answer: the conversation and its visitor token (keep it: it is the only key).
#[derive(Serialize, ToSchema)]
pub struct Started {
    #[serde(flatten)]
    pub session: VisitorSession,
    pub visitor_token: String,
    /// The welcome message, the conversation's first message, when an operator answered.
    pub welcome: Option<MessageView>,
}

/// `Accept-Language` tags, best first, as `ll` or `ll_CC`.
fn accepted_languages(headers: &HeaderMap) -> Vec<String> {
    let raw = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut tagged: Vec<(f32, String)> = raw
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.trim().split(';');
            let tag = language("Accept-Language", pieces.next()?).ok()?;
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=")?.parse::<f32>().ok()).unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    tagged.sort_by(|a, b| b.0.total_cmp(&a.0));
    tagged.into_iter().map(|(_, t)| t).take(5).collect()
}

async fn view(state: &AppState, session_id: Uuid) -> Result<VisitorSession, Problem> {
    let (s, _) = conversation::session(state, session_id).await?;
    let channel_id = s.channel_id.unwrap_or_default();
    let operator = match s.operator {
        Some(id) => Some(OperatorView {
            id,
            name: state.users.get(state.events.as_ref(), id).await?.display_name().to_string(),
        }),
        None => None,
    };
    let queue_position = if s.status == SessionStatus::Waiting {
        let queue = projections::conversations::queue_all(state.views.as_ref(), channel_id).await?;
        Some(queue.iter().position(|c| c.session_id == session_id).map_or(queue.len() + 1, |i| i + 1))
    } else {
        None
    };
    Ok(VisitorSession {
        session_id,
        channel_id,
        status: s.status,
        operator,
        queue_position,
        notice: (s.status == SessionStatus::Waiting).then_some(NOBODY_AVAILABLE),
        seen_by_operator: s.seen_by_operator,
        bot: s.bot.as_ref().map(bot_view),
    })
}

/// Starts a conversation on a channel: routed to an available operator, who greets the
/// visitor with the welcome message, or put in the channel's queue when nobody is available
/// (the visitor may still write).
#[utoipa::path(post, path = "/api/v1/public/channels/{id}/sessions", tag = "visitors", request_body = StartRequest,
    responses((status = 201, body = Started), (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body<StartRequest>,
) -> Result<Response, Problem> {
    let req = json_body(body)?;
    let channel_id = path_id(&id, "channel")?;
    let languages = req.languages.unwrap_or_else(|| accepted_languages(&headers));
    let country = state.geo.country(&headers, peer.map(|Extension(ConnectInfo(a))| a.ip()));
    let ctx = context(&state, visitor_actor(), &headers);
    // The token (it names the conversation) is the visitor's credential: made here, only its
    // digest is stored.
    let session_id = Uuid::now_v7();
    let (token, digest) = mint(session_id);
    let input = conversation::StartInput {
        session_id,
        channel_id,
        name: req.name,
        url: req.url,
        previous_operator: req.previous_operator_id,
        languages,
        country,
        visitor_token_sha256: digest,
    };
    conversation::start(&state, &ctx, input).await?;
    let session = view(&state, session_id).await?;
    let welcome = history::history(&state, session_id).await?.into_iter().find(|m| m.welcome);
    let mut res = (StatusCode::CREATED, Json(Started { session, visitor_token: token, welcome })).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/public/sessions/{session_id}")) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// The conversation as its visitor sees it (status, operator, queue position, seen mark).
#[utoipa::path(get, path = "/api/v1/public/sessions/{id}", tag = "visitors",
    responses((status = 200, body = VisitorSession), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
pub async fn show(
    State(state): State<AppState>,
    caller: VisitorCaller,
    Path(id): Path<String>,
) -> Result<Json<VisitorSession>, Problem> {
    let id = caller.own(&id)?;
    Ok(Json(view(&state, id).await?))
}

/// A page of messages.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
}

/// Parses `after`, `before` and `limit` of a history request.
pub fn history_params(q: &mut Params) -> (Option<Uuid>, Option<Uuid>, usize) {
    let after = q.parse("after", "a message id");
    let before = q.parse("before", "a message id");
    let limit = q.limit(50, 200);
    (after, before, limit)
}

/// The conversation's history: `?after=` or `?before=` a message id, `limit` (default 50).
#[utoipa::path(get, path = "/api/v1/public/sessions/{id}/messages", tag = "visitors",
    responses((status = 200, body = MessagePage), (status = 403, body = ProblemDocument)))]
pub async fn messages(
    State(state): State<AppState>,
    caller: VisitorCaller,
    Path(id): Path<String>,
    mut q: Params,
) -> Result<Json<MessagePage>, Problem> {
    let id = caller.own(&id)?;
    let (after, before, limit) = history_params(&mut q);
    q.finish()?;
    let all = history::history(&state, id).await?;
    Ok(Json(MessagePage { messages: history::page(all, after, before, limit)? }))
}

/// A message to post; `message_id` (client-made) makes a retry idempotent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub message_id: Option<Uuid>,
    /// Plain text, at most 4,000 characters.
    pub text: String,
}

/// Answers a post with the stored message (the same answer for a retried post).
pub async fn posted(
    state: &AppState,
    session_id: Uuid,
    message_id: Uuid,
    (outcome, session): (commands::Outcome, domain::session::Session),
) -> Result<Response, Problem> {
    let message = match outcome.recorded_at.filter(|_| outcome.written > 0) {
        Some(at) => history::written_message(state, &session, message_id, at).await?,
        // A retry of a post that landed earlier: its original time is in the stream.
        None => history::message(state, session_id, message_id).await?,
    };
    let mut res = (StatusCode::CREATED, Json(message)).into_response();
    mark_position(&mut res, outcome.position);
    Ok(res)
}

/// The visitor writes (also while waiting for an operator).
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/messages", tag = "visitors", request_body = NewMessage,
    responses((status = 201, body = MessageView), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn write(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<NewMessage>,
) -> Result<Response, Problem> {
    let id = caller.own(&id)?;
    let m = json_body(body)?;
    let message_id = m.message_id.unwrap_or_else(Uuid::now_v7);
    let ctx = context(&state, visitor_actor(), &headers);
    let decided = conversation::visitor_post(&state, &ctx, id, message_id, &m.text).await?;
    posted(&state, id, message_id, decided).await
}

/// A page the visitor visited.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageVisit {
    pub url: String,
}

/// Reports a page the visitor visited during the conversation (operators see them).
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/pages", tag = "visitors", request_body = PageVisit,
    responses((status = 204), (status = 422, body = ProblemDocument)))]
pub async fn visit(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<PageVisit>,
) -> Result<StatusCode, Problem> {
    let id = caller.own(&id)?;
    let p = json_body(body)?;
    let ctx = context(&state, visitor_actor(), &headers);
    conversation::visit(&state, &ctx, id, &p.url).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything up to this message has been seen.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeenUpTo {
    pub up_to: Uuid,
}

/// The visitor has seen the messages up to `up_to`.
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/seen", tag = "visitors", request_body = SeenUpTo,
    responses((status = 204), (status = 404, body = ProblemDocument)))]
pub async fn seen(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<SeenUpTo>,
) -> Result<StatusCode, Problem> {
    let id = caller.own(&id)?;
    let s = json_body(body)?;
    let ctx = context(&state, visitor_actor(), &headers);
    conversation::seen(&state, &ctx, Party::Visitor, id, s.up_to).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The visitor leaves: the conversation closes with "Visitor left the conversation."
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/leave", tag = "visitors",
    responses((status = 204), (status = 403, body = ProblemDocument)))]
pub async fn leave(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = caller.own(&id)?;
    let ctx = context(&state, visitor_actor(), &headers);
    conversation::leave(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The visitor's answer to the step the bot waits on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotAnswer {
    /// The step answered (from the session's `bot.expects`).
    pub step_id: Uuid,
    /// Client-made: a retry with the same id is answered once.
    pub message_id: Option<Uuid>,
    /// The choice, for a `question_selection` step.
    pub answer_id: Option<Uuid>,
    /// The answer, for the other questions.
    pub text: Option<String>,
}

/// The conversation after a bot command, and the messages written from the visitor's answer on.
#[derive(Serialize, ToSchema)]
pub struct BotReply {
    pub session: VisitorSession,
    pub messages: Vec<MessageView>,
}

async fn bot_reply(state: &AppState, id: Uuid, from: Uuid) -> Result<Json<BotReply>, Problem> {
    let all = history::history(state, id).await?;
    let messages = match all.iter().position(|m| m.message_id == from) {
        Some(i) => all[i..].to_vec(),
        None => vec![],
    };
    Ok(Json(BotReply { session: view(state, id).await?, messages }))
}

/// Answers the step the bot waits on: a choice (`answer_id`) or `text`. An invalid email is
/// said back and asked again; answering a step twice (double click, retry) is answered once.
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/bot/answer", tag = "visitors", request_body = BotAnswer,
    responses((status = 200, body = BotReply),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "bot-not-running or not-the-current-step"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn bot_answer(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<BotAnswer>,
) -> Result<Json<BotReply>, Problem> {
    let id = caller.own(&id)?;
    let a = json_body(body)?;
    let message_id = a.message_id.unwrap_or_else(Uuid::now_v7);
    let ctx = context(&state, visitor_actor(), &headers);
    conversation::bot_answer(&state, &ctx, id, a.step_id, message_id, a.answer_id, a.text.as_deref()).await?;
    bot_reply(&state, id, message_id).await
}

/// A restart's client-made id: a retry restarts once.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BotRestart {
    pub message_id: Option<Uuid>,
}

/// Restarts the script ("Restarting conversation..."); earlier answers stay in the log but
/// no longer count. Possible until an operator has the conversation.
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/bot/restart", tag = "visitors", request_body = BotRestart,
    responses((status = 200, body = BotReply),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json", description = "bot-not-running")))]
pub async fn bot_restart(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<BotRestart>,
) -> Result<Json<BotReply>, Problem> {
    let id = caller.own(&id)?;
    let message_id = json_body(body)?.message_id.unwrap_or_else(Uuid::now_v7);
    let ctx = context(&state, visitor_actor(), &headers);
    conversation::bot_restart(&state, &ctx, id, message_id).await?;
    bot_reply(&state, id, message_id).await
}
