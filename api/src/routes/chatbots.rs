//! Chatbot scripts (administrators): the script, its steps and their answers. A script is read
//! from its stream (`ETag` = its version, which every edit bumps); lists come from the
//! `chatbots` view. Every write answers with the whole script.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use commands::{execute, stream_id, Context, Outcome};
use domain::chatbot::{self, Chatbot, ChatbotError, ChatbotEvent, StepType, Warning};
use domain::session::{self, BotError, BotTest, SessionEvent};
use domain::values::Invalid;
use domain::Aggregate;
use projections::chatbots::{ChatbotSummary, VIEW};
use serde::{Deserialize, Serialize};
use store::Position;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{context, etag, if_match, invalid, json_body, mark_position, path_id, read, refused, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::routes::streams::wait_for_view;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/chatbots", get(list).post(create))
        .route("/api/v1/chatbots/{id}", get(show).patch(update))
        .route("/api/v1/chatbots/{id}/steps", post(add_step))
        .route("/api/v1/chatbots/{id}/steps/order", put(order_steps))
        .route("/api/v1/chatbots/{id}/steps/{step_id}", patch(edit_step).delete(remove_step))
        .route("/api/v1/chatbots/{id}/steps/{step_id}/answers", post(add_answer))
        .route("/api/v1/chatbots/{id}/steps/{step_id}/answers/order", put(order_answers))
        .route("/api/v1/chatbots/{id}/steps/{step_id}/answers/{answer_id}", patch(edit_answer).delete(remove_answer))
        .route("/api/v1/chatbots/{id}/test", post(test))
        .route("/api/v1/chatbots/{id}/test/{test_id}/answer", post(test_answer))
}

impl From<ChatbotError> for Problem {
    fn from(e: ChatbotError) -> Self {
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            ChatbotError::NotFound => Problem::not_found("no such chatbot"),
            ChatbotError::StepNotFound => code(StatusCode::NOT_FOUND, "step-not-found"),
            ChatbotError::AnswerNotFound => code(StatusCode::NOT_FOUND, "answer-not-found"),
            ChatbotError::AlreadyExists => code(StatusCode::CONFLICT, "already-exists"),
            ChatbotError::Invalid(errors) => invalid(errors.clone()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// A new script.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChatbot {
    #[schema(example = "Support bot")]
    pub title: String,
    /// The bot's name as visitors see it; default: the title (and it follows renames).
    pub author_name: Option<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// Changes: absent fields keep their value; `author_name: ""` follows the title again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatbotPatch {
    pub title: Option<String>,
    pub author_name: Option<String>,
    pub active: Option<bool>,
}

/// A new step.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStep {
    /// `text` (default), `question_selection`, `question_email`, `question_phone`,
    /// `free_input_single`, `free_input_multi`, `forward_operator`.
    pub step_type: Option<String>,
    /// What the bot says (may be empty for `forward_operator` only).
    #[serde(default)]
    pub message: String,
    /// Its place, 0 first (default: last).
    pub index: Option<usize>,
}

/// Changes to a step; `only_if` lists answers of earlier steps.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepPatch {
    pub step_type: Option<String>,
    pub message: Option<String>,
    pub only_if: Option<Vec<Uuid>>,
}

/// Every id, in the new order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub order: Vec<Uuid>,
}

/// A new answer of a `question_selection` step.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAnswer {
    pub label: String,
    /// Choosing it ends the script and sends the visitor there (http(s) URL or `/path`).
    pub redirect_link: Option<String>,
}

/// Changes to an answer; `redirect_link: ""` removes the link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerPatch {
    pub label: Option<String>,
    pub redirect_link: Option<String>,
}

/// A script with its steps.
#[derive(Serialize, ToSchema)]
pub struct ChatbotDetail {
    pub chatbot_id: Uuid,
    pub title: String,
    /// The bot's name as visitors see it.
    pub author_name: String,
    /// False while the author name follows the title.
    pub author_name_set: bool,
    pub active: bool,
    /// The stream version, bumped by every edit: the `ETag`; conversations record the
    /// version they follow.
    pub version: u64,
    /// `first_step_operator`, `first_step_invalid` (Odoo's welcome-step warnings).
    #[schema(value_type = Vec<String>)]
    pub warnings: Vec<Warning>,
    /// Steps in order: `step_id`, `step_type`, `message`, `answers` (`answer_id`, `label`,
    /// `redirect_link`), `only_if` (answer ids).
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<chatbot::Step>,
}

/// Scripts, by title.
#[derive(Serialize, ToSchema)]
pub struct ChatbotPage {
    pub chatbots: Vec<ChatbotSummary>,
}

// ---------------------------------------------------------------------------------------------
// Operations

fn detail(c: &Chatbot, version: u64) -> ChatbotDetail {
    let script = c.script(version);
    ChatbotDetail {
        chatbot_id: script.chatbot_id,
        title: script.title.clone(),
        author_name: script.author_name.clone(),
        author_name_set: c.author_name.is_some(),
        active: c.active,
        version,
        warnings: chatbot::warnings(&script),
        steps: script.steps,
    }
}

fn step_type(field: &str, raw: Option<&str>) -> Result<Option<StepType>, Invalid> {
    let Some(raw) = raw else { return Ok(None) };
    serde_json::from_value(serde_json::Value::String(raw.trim().to_string())).map(Some).map_err(|_| {
        Invalid::new(
            field,
            format!(
                "'{raw}' is not text, question_selection, question_email, question_phone, free_input_single, \
                 free_input_multi or forward_operator"
            ),
        )
    })
}

/// Runs a decision on a script and answers with the script as it is after it.
async fn write(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: Uuid,
    created: bool,
    decide: impl Fn(&Chatbot) -> Result<Vec<ChatbotEvent>, ChatbotError>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let expected = if_match(headers)?;
    let ctx = context(state, caller.actor(), headers);
    let stream = stream_id::<Chatbot>(id);
    let outcome = execute::<Chatbot, ChatbotError>(state.events.as_ref(), &stream, &ctx, expected, decide)
        .await
        .map_err(refused)?;
    let loaded = read::<Chatbot>(state, id).await?;
    let version = loaded.version.unwrap_or_default();
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(respond(status, Outcome { version: Some(version), ..outcome }, &loaded.state, id))
}

fn respond(status: StatusCode, outcome: Outcome, c: &Chatbot, id: Uuid) -> Response {
    let mut res = (status, Json(detail(c, outcome.version.unwrap_or_default()))).into_response();
    if let Some((k, v)) = etag(outcome.version) {
        res.headers_mut().insert(k, v);
    }
    if status == StatusCode::CREATED {
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/chatbots/{id}")) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    mark_position(&mut res, outcome.position);
    res
}

fn ids(id: &str, step: &str) -> Result<(Uuid, Uuid), Problem> {
    Ok((path_id(id, "chatbot")?, path_id(step, "step")?))
}

// ---------------------------------------------------------------------------------------------
// Handlers

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
    let docs = store::views::list_all(state.views.as_ref(), VIEW, None).await?;
    Ok(Json(ChatbotPage {
        chatbots: docs.into_iter().filter_map(|d| projections::chatbots::summary(d.body)).collect(),
    }))
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
    let ctx = context(&state, caller.actor(), &headers);
    let id = ctx.new_id("chatbot");
    write(&state, &caller, &headers, id, true, |c| {
        if c.exists() && ctx.idempotency_key.is_some() {
            return Ok(vec![]);
        }
        chatbot::create(c, id, &b.title, b.author_name.as_deref(), b.active.unwrap_or(true))
    })
    .await
}

/// A script with its steps, answers and warnings, from its stream.
#[utoipa::path(get, path = "/api/v1/chatbots/{id}", tag = "chatbots", params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "chatbot")?;
    let loaded = read::<Chatbot>(&state, id).await?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok(respond(
            StatusCode::OK,
            Outcome { version: Some(v), position: None, written: 0, recorded_at: None },
            &loaded.state,
            id,
        )),
        _ => Err(Problem::not_found("no such chatbot")),
    }
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
    write(&state, &caller, &headers, id, false, |c| {
        chatbot::change(c, p.title.as_deref(), p.author_name.as_deref(), p.active)
    })
    .await
}

/// Adds a step (last, or at `index`).
#[utoipa::path(post, path = "/api/v1/chatbots/{id}/steps", tag = "chatbots", request_body = NewStep,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 201, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn add_step(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<NewStep>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "chatbot")?;
    let b = json_body(body)?;
    let t = step_type("step_type", b.step_type.as_deref()).map_err(|e| invalid(vec![e]))?.unwrap_or_default();
    let ctx = context(&state, caller.actor(), &headers);
    let step_id = ctx.new_id("chatbot-step");
    write(&state, &caller, &headers, id, true, |c| {
        if ctx.idempotency_key.is_some() && c.steps.iter().any(|s| s.step_id == step_id) {
            return Ok(vec![]);
        }
        chatbot::add_step(c, step_id, t, &b.message, b.index)
    })
    .await
}

/// Changes a step's type, message or "only if" conditions (answers of earlier steps).
#[utoipa::path(patch, path = "/api/v1/chatbots/{id}/steps/{step_id}", tag = "chatbots", request_body = StepPatch,
    params(("id" = Uuid, Path), ("step_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn edit_step(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    body: Body<StepPatch>,
) -> Result<Response, Problem> {
    let (id, step_id) = ids(&id, &step)?;
    let p = json_body(body)?;
    let t = step_type("step_type", p.step_type.as_deref()).map_err(|e| invalid(vec![e]))?;
    write(&state, &caller, &headers, id, false, |c| {
        chatbot::edit_step(c, step_id, t, p.message.as_deref(), p.only_if.as_deref())
    })
    .await
}

/// Removes a step with its answers; conditions on them are dropped.
#[utoipa::path(delete, path = "/api/v1/chatbots/{id}/steps/{step_id}", tag = "chatbots",
    params(("id" = Uuid, Path), ("step_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn remove_step(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (id, step_id) = ids(&id, &step)?;
    write(&state, &caller, &headers, id, false, |c| chatbot::remove_step(c, step_id)).await
}

/// Puts the steps in a new order (every step once); conditions that no longer point at an
/// earlier step are dropped.
#[utoipa::path(put, path = "/api/v1/chatbots/{id}/steps/order", tag = "chatbots", request_body = NewOrder,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn order_steps(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<NewOrder>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "chatbot")?;
    let b = json_body(body)?;
    write(&state, &caller, &headers, id, false, |c| chatbot::reorder_steps(c, &b.order)).await
}

/// Adds an answer to a `question_selection` step.
#[utoipa::path(post, path = "/api/v1/chatbots/{id}/steps/{step_id}/answers", tag = "chatbots", request_body = NewAnswer,
    params(("id" = Uuid, Path), ("step_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 201, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn add_answer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    body: Body<NewAnswer>,
) -> Result<Response, Problem> {
    let (id, step_id) = ids(&id, &step)?;
    let b = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let answer_id = ctx.new_id("chatbot-answer");
    write(&state, &caller, &headers, id, true, |c| {
        let exists = c.steps.iter().flat_map(|s| &s.answers).any(|a| a.answer_id == answer_id);
        if ctx.idempotency_key.is_some() && exists {
            return Ok(vec![]);
        }
        chatbot::add_answer(c, step_id, answer_id, &b.label, b.redirect_link.as_deref())
    })
    .await
}

/// Changes an answer's label or redirect link.
#[utoipa::path(patch, path = "/api/v1/chatbots/{id}/steps/{step_id}/answers/{answer_id}", tag = "chatbots",
    request_body = AnswerPatch,
    params(("id" = Uuid, Path), ("step_id" = Uuid, Path), ("answer_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn edit_answer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step, answer)): Path<(String, String, String)>,
    body: Body<AnswerPatch>,
) -> Result<Response, Problem> {
    let (id, step_id) = ids(&id, &step)?;
    let answer_id = path_id(&answer, "answer")?;
    let p = json_body(body)?;
    write(&state, &caller, &headers, id, false, |c| {
        chatbot::edit_answer(c, step_id, answer_id, p.label.as_deref(), p.redirect_link.as_deref())
    })
    .await
}

/// Removes an answer; conditions on it are dropped.
#[utoipa::path(delete, path = "/api/v1/chatbots/{id}/steps/{step_id}/answers/{answer_id}", tag = "chatbots",
    params(("id" = Uuid, Path), ("step_id" = Uuid, Path), ("answer_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn remove_answer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step, answer)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let (id, step_id) = ids(&id, &step)?;
    let answer_id = path_id(&answer, "answer")?;
    write(&state, &caller, &headers, id, false, |c| chatbot::remove_answer(c, step_id, answer_id)).await
}

/// Puts a step's answers in a new order (every answer once).
#[utoipa::path(put, path = "/api/v1/chatbots/{id}/steps/{step_id}/answers/order", tag = "chatbots", request_body = NewOrder,
    params(("id" = Uuid, Path), ("step_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ChatbotDetail, headers(("ETag" = String))),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn order_answers(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    body: Body<NewOrder>,
) -> Result<Response, Problem> {
    let (id, step_id) = ids(&id, &step)?;
    let b = json_body(body)?;
    write(&state, &caller, &headers, id, false, |c| chatbot::reorder_answers(c, step_id, &b.order)).await
}

// ---------------------------------------------------------------------------------------------
// Dry runs

/// A dry run's messages and where it stands.
#[derive(Serialize, ToSchema)]
pub struct TestRun {
    pub test_id: Uuid,
    /// The script version it follows.
    pub version: u64,
    /// `running`, `finished` or `redirected`.
    pub state: &'static str,
    pub expects: Option<crate::routes::sessions::ExpectedAnswer>,
    pub messages: Vec<TestMessage>,
    /// What a dry run does differently: forwards route to nobody.
    pub notes: Vec<String>,
}

/// A message of a dry run.
#[derive(Serialize, ToSchema)]
pub struct TestMessage {
    /// `bot`, `visitor` or `system`.
    pub author: &'static str,
    pub text: String,
}

/// An answer in a dry run (as a visitor's `.../bot/answer`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestAnswer {
    pub step_id: Uuid,
    pub message_id: Option<Uuid>,
    pub answer_id: Option<Uuid>,
    pub text: Option<String>,
}

const DRY_FORWARD: &str =
    "forward_operator: a dry run routes to nobody, so the script went on as when no operator is available";

async fn test_write(
    state: &AppState,
    ctx: &Context,
    test_id: Uuid,
    decide: impl Fn(&BotTest) -> Result<Vec<SessionEvent>, BotError>,
) -> Result<(), Problem> {
    execute::<BotTest, BotError>(state.events.as_ref(), &stream_id::<BotTest>(test_id), ctx, None, decide)
        .await
        .map_err(refused)?;
    Ok(())
}

/// Settles the forwards a dry run reached as if nobody were available.
async fn settle_test(state: &AppState, ctx: &Context, test_id: Uuid) -> Result<(), Problem> {
    for _ in 0..=chatbot::MAX_STEPS {
        let run = read::<BotTest>(state, test_id).await?.state;
        let Some(bot) = run.0.bot.as_ref().filter(|b| b.forwarding && b.running()) else { return Ok(()) };
        let Some(step_id) = bot.at.map(|i| bot.script.steps[i].step_id) else { return Ok(()) };
        let seed = Uuid::now_v7();
        test_write(state, ctx, test_id, |t| session::bot_forwarded(&t.0, step_id, None, seed)).await?;
    }
    Ok(())
}

/// The dry run as it stands, from its stream; 404 unless it tests chatbot `id`.
async fn test_run(state: &AppState, id: Uuid, test_id: Uuid) -> Result<TestRun, Problem> {
    let stream = stream_id::<BotTest>(test_id);
    let recorded = store::read_whole_stream(state.events.as_ref(), &stream, 0).await?;
    let mut run = BotTest::default();
    let (mut messages, mut notes) = (vec![], vec![]);
    for e in &recorded {
        let event: SessionEvent = domain::aggregate::decode_versioned(&e.event_type, e.schema_version, &e.data)
            .map_err(|err| {
                tracing::error!(error = %err, %stream, "stored dry-run event unreadable");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            })?;
        let said = |author, text: &str| TestMessage { author, text: text.to_string() };
        match &event {
            SessionEvent::ChatbotStepPosted { text, .. } | SessionEvent::ChatbotSaid { text, .. } => {
                messages.push(said("bot", text))
            }
            SessionEvent::ChatbotRestarted { .. } => messages.push(said("bot", domain::bot_runtime::RESTARTING)),
            SessionEvent::ChatbotAnswered { text, .. } => messages.push(said("visitor", text)),
            SessionEvent::MessagePosted { text, .. } => messages.push(said("system", text)),
            SessionEvent::ChatbotForwarding { .. } if !notes.contains(&DRY_FORWARD.to_string()) => {
                notes.push(DRY_FORWARD.to_string())
            }
            _ => {}
        }
        run.apply(&event);
    }
    let bot = run
        .0
        .bot
        .as_ref()
        .filter(|b| b.script.chatbot_id == id)
        .ok_or_else(|| Problem::not_found("no such dry run"))?;
    let state_name = match &bot.ended {
        None => "running",
        Some(session::BotOutcome::Redirected { .. }) => "redirected",
        Some(_) => "finished",
    };
    Ok(TestRun {
        test_id,
        version: bot.script.version,
        state: state_name,
        expects: bot.awaited().map(|s| crate::routes::sessions::ExpectedAnswer {
            step_id: s.step_id,
            step_type: s.step_type,
            message: s.message.clone(),
            answers: s.answers.clone(),
        }),
        messages,
        notes,
    })
}

/// Starts a dry run of the script as it is now (active or not): the bot's welcome, in a
/// conversation of its own that no report, count or queue ever sees.
#[utoipa::path(post, path = "/api/v1/chatbots/{id}/test", tag = "chatbots", params(("id" = Uuid, Path)),
    responses((status = 201, body = TestRun),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestRun>), Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "chatbot")?;
    let loaded = read::<Chatbot>(&state, id).await?;
    let version = match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => v,
        _ => return Err(Problem::not_found("no such chatbot")),
    };
    if loaded.state.steps.is_empty() {
        return Err(invalid(vec![Invalid::new("steps", "the chatbot has no steps to test")]));
    }
    let script = loaded.state.script(version);
    let ctx = context(&state, caller.actor(), &headers);
    let test_id = ctx.new_id("chatbot-test");
    let start = session::Start {
        session_id: test_id,
        channel_id: Uuid::nil(),
        visitor_name: Some("Test visitor".into()),
        visitor_number: 0,
        page_url: "/".into(),
        country: None,
        languages: vec![],
        visitor_token_sha256: String::new(),
        operator: None,
        welcome_message_id: Uuid::now_v7(),
        welcome_text: String::new(),
    };
    test_write(&state, &ctx, test_id, |t| {
        if t.0.exists() && ctx.idempotency_key.is_some() {
            return Ok(vec![]);
        }
        Ok(session::start_with_bot(&t.0, start.clone(), script.clone())?)
    })
    .await?;
    settle_test(&state, &ctx, test_id).await?;
    Ok((StatusCode::CREATED, Json(test_run(&state, id, test_id).await?)))
}

/// Answers the step a dry run waits on, as a visitor would.
#[utoipa::path(post, path = "/api/v1/chatbots/{id}/test/{test_id}/answer", tag = "chatbots", request_body = TestAnswer,
    params(("id" = Uuid, Path), ("test_id" = Uuid, Path)),
    responses((status = 200, body = TestRun),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn test_answer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, test)): Path<(String, String)>,
    body: Body<TestAnswer>,
) -> Result<Json<TestRun>, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "chatbot")?;
    let test_id = path_id(&test, "dry run")?;
    let a = json_body(body)?;
    test_run(&state, id, test_id).await?;
    let ctx = context(&state, caller.actor(), &headers);
    let message_id = a.message_id.unwrap_or_else(Uuid::now_v7);
    test_write(&state, &ctx, test_id, |t| {
        session::bot_answer(&t.0, a.step_id, message_id, a.answer_id, a.text.as_deref())
    })
    .await?;
    settle_test(&state, &ctx, test_id).await?;
    Ok(Json(test_run(&state, id, test_id).await?))
}
