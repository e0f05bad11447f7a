//! Dry runs of a script: in a conversation of its own, answered as a visitor would.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use commands::chatbots::{self as use_case, DryAnswer};
use uuid::Uuid;

use super::wire::{TestAnswer, TestRun};
use crate::auth::Caller;
use crate::commanding::{context, json_body, path_id, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::AppState;

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
    let ctx = context(&state, caller.actor(), &headers);
    Ok((StatusCode::CREATED, Json(use_case::start_test(&state, &ctx, id).await?.into())))
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
    let ctx = context(&state, caller.actor(), &headers);
    let answer = DryAnswer {
        step_id: a.step_id,
        message_id: a.message_id.unwrap_or_else(Uuid::now_v7),
        answer_id: a.answer_id,
        text: a.text,
    };
    Ok(Json(use_case::answer_test(&state, &ctx, id, test_id, &answer).await?.into()))
}
