//! The chatbot routes' wire shapes (bodies and answers) and how a script becomes one.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::chatbots::{Author, DryRun, RunState, Written};
use commands::Outcome;
use domain::chatbot::{self, Chatbot, StepType, Warning};
use domain::values::Invalid;
use projections::chatbots::ChatbotSummary;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{etag, if_match, mark_position, path_id};
use crate::problem::Problem;

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

impl From<DryRun> for TestRun {
    fn from(r: DryRun) -> Self {
        let author = |a| match a {
            Author::Bot => "bot",
            Author::Visitor => "visitor",
            Author::System => "system",
        };
        TestRun {
            test_id: r.test_id,
            version: r.version,
            state: match r.state {
                RunState::Running => "running",
                RunState::Finished => "finished",
                RunState::Redirected => "redirected",
            },
            expects: r.expects.map(|s| crate::routes::sessions::ExpectedAnswer {
                step_id: s.step_id,
                step_type: s.step_type,
                message: s.message,
                answers: s.answers,
            }),
            messages: r.messages.into_iter().map(|(a, text)| TestMessage { author: author(a), text }).collect(),
            notes: r.notes,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shaping

/// Administrators only; then the `If-Match` version (in that order, as every write checks).
pub(super) fn guard(caller: &Caller, headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    caller.require_admin()?;
    if_match(headers)
}

/// The answer to a write: the script as it is after it (201 with `Location` when `created`).
pub(super) fn written(created: bool, id: Uuid, (outcome, c): Written) -> Response {
    respond(if created { StatusCode::CREATED } else { StatusCode::OK }, outcome, &c, id)
}

pub(super) fn detail(c: &Chatbot, version: u64) -> ChatbotDetail {
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

pub(super) fn step_type(field: &str, raw: Option<&str>) -> Result<Option<StepType>, Invalid> {
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

pub(super) fn respond(status: StatusCode, outcome: Outcome, c: &Chatbot, id: Uuid) -> Response {
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

pub(super) fn ids(id: &str, step: &str) -> Result<(Uuid, Uuid), Problem> {
    Ok((path_id(id, "chatbot")?, path_id(step, "step")?))
}
