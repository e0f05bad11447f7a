//! A script's steps and their answers: add, change, remove, reorder.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use commands::chatbots::{self as use_case, ScriptEdit};

use super::wire::{
    guard, ids, step_type, written, AnswerPatch, ChatbotDetail, NewAnswer, NewOrder, NewStep, StepPatch,
};
use crate::auth::Caller;
use crate::commanding::{context, invalid, json_body, path_id, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::AppState;

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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let done = use_case::add_step(&state, &ctx, id, expected, t, &b.message, b.index).await?;
    Ok(written(true, id, done))
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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let edit = ScriptEdit::EditStep { step_id, step_type: t, message: p.message, only_if: p.only_if };
    Ok(written(false, id, use_case::edit(&state, &ctx, id, expected, &edit).await?))
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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    Ok(written(false, id, use_case::edit(&state, &ctx, id, expected, &ScriptEdit::RemoveStep { step_id }).await?))
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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let edit = ScriptEdit::OrderSteps { order: b.order };
    Ok(written(false, id, use_case::edit(&state, &ctx, id, expected, &edit).await?))
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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let done = use_case::add_answer(&state, &ctx, id, expected, step_id, &b.label, b.redirect_link.as_deref());
    Ok(written(true, id, done.await?))
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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let edit = ScriptEdit::EditAnswer { step_id, answer_id, label: p.label, redirect_link: p.redirect_link };
    Ok(written(false, id, use_case::edit(&state, &ctx, id, expected, &edit).await?))
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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let edit = ScriptEdit::RemoveAnswer { step_id, answer_id };
    Ok(written(false, id, use_case::edit(&state, &ctx, id, expected, &edit).await?))
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
    let expected = guard(&caller, &headers)?;
    let ctx = context(&state, caller.actor(), &headers);
    let edit = ScriptEdit::OrderAnswers { step_id, order: b.order };
    Ok(written(false, id, use_case::edit(&state, &ctx, id, expected, &edit).await?))
}
