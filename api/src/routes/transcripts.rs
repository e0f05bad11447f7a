//! Transcripts by email: the visitor asks once the conversation has ended, its operators or
//! an admin at any time; the answer is 202 and the outbox worker (`crate::mailer`) delivers.
//! Each requester can follow the delivery's status.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use commands::transcripts::{self as use_case, Ask};
use domain::metadata::{Actor, ActorKind};
use domain::transcript::{self, Requester, Transcript};
use projections::transcripts::TranscriptDoc;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{context, json_body, mark_position, path_id, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::visitor::VisitorCaller;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    let public = Router::new()
        .route(
            "/api/v1/public/sessions/{id}/transcript",
            post(visitor_request).options(crate::routes::public::preflight),
        )
        .route("/api/v1/public/sessions/{id}/transcripts/{transcript_id}", get(visitor_status))
        // The widget runs on the customer's website, like the other visitor routes.
        .layer(middleware::map_response(|mut res: Response| async move {
            res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            res
        }));
    Router::new()
        .route("/api/v1/conversations/{id}/transcript", post(operator_request))
        .route("/api/v1/transcripts/{id}", get(status))
        .merge(public)
}

/// Where to send a conversation's transcript.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscriptRequest {
    /// The recipient: one plain address like `marie@example.com` (at most 254 characters).
    pub email: Option<String>,
}

fn doc(session_id: Uuid, t: &Transcript) -> TranscriptDoc {
    let pending = t.status == transcript::TranscriptStatus::Pending;
    TranscriptDoc {
        transcript_id: t.transcript_id,
        session_id,
        email: t.email.clone(),
        requested_by: t.requested_by,
        status: t.status,
        requested_at: t.requested_at,
        attempts: t.attempts,
        next_attempt_at: pending.then_some(t.next_attempt_at),
        last_error: t.last_error.clone(),
        delivered_via: t.delivered_via,
        detail: t.detail.clone(),
    }
}

/// Records the request; 202 with the transcript's status and where to follow it.
async fn ask(
    state: &AppState,
    headers: &HeaderMap,
    actor: Actor,
    ask: Ask,
    location: impl Fn(Uuid) -> String,
) -> Result<Response, Problem> {
    let ctx = context(state, actor, headers);
    let session_id = ask.session_id;
    let (outcome, t) = use_case::request(state, &ctx, ask).await?;
    let mut res = (StatusCode::ACCEPTED, Json(doc(session_id, &t))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location(t.transcript_id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    mark_position(&mut res, outcome.position);
    Ok(res)
}

/// The visitor asks for the transcript of their ended conversation (409 while it is open;
/// at most 5 per conversation, then 429).
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/transcript", tag = "visitors", request_body = TranscriptRequest,
    responses((status = 202, body = TranscriptDoc), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument), (status = 429, body = ProblemDocument)))]
pub async fn visitor_request(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<TranscriptRequest>,
) -> Result<Response, Problem> {
    let id = caller.own(&id)?;
    let req = json_body(body)?;
    let actor = Actor { kind: ActorKind::Visitor, id: None };
    let request = Ask { session_id: id, by: Requester::Visitor, admin: false, email: req.email };
    ask(&state, &headers, actor, request, |t| format!("/api/v1/public/sessions/{id}/transcripts/{t}")).await
}

/// The visitor follows a transcript they asked for.
#[utoipa::path(get, path = "/api/v1/public/sessions/{id}/transcripts/{transcript_id}", tag = "visitors",
    responses((status = 200, body = TranscriptDoc), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn visitor_status(
    State(state): State<AppState>,
    caller: VisitorCaller,
    Path((id, transcript_id)): Path<(String, String)>,
) -> Result<Json<TranscriptDoc>, Problem> {
    let id = caller.own(&id)?;
    let transcript_id = path_id(&transcript_id, "transcript")?;
    Ok(Json(doc(id, &use_case::visitors(&state, id, transcript_id).await?)))
}

/// An operator of the conversation (anyone who handled it) or an admin sends its transcript,
/// at any time.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/transcript", tag = "conversations", request_body = TranscriptRequest,
    responses((status = 202, body = TranscriptDoc), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument),
        (status = 422, body = ProblemDocument), (status = 429, body = ProblemDocument)))]
pub async fn operator_request(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<TranscriptRequest>,
) -> Result<Response, Problem> {
    let id = path_id(&id, "conversation")?;
    let req = json_body(body)?;
    let by = Requester::Operator { id: caller.user_id };
    let request = Ask { session_id: id, by, admin: caller.is_admin(), email: req.email };
    ask(&state, &headers, caller.actor(), request, |t| format!("/api/v1/transcripts/{t}")).await
}

/// A transcript's delivery: pending (with the next attempt's time), delivered or failed.
/// For its requester, the conversation's operators and admins; `?min_position=` waits for a
/// request just made.
#[utoipa::path(get, path = "/api/v1/transcripts/{id}", tag = "conversations",
    responses((status = 200, body = TranscriptDoc), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    mut q: Params,
) -> Result<Json<TranscriptDoc>, Problem> {
    let min_position = q.parse("min_position", "a position (TX:POS)");
    q.finish()?;
    let transcript_id = path_id(&id, "transcript")?;
    wait_for_view(&state, "transcripts", min_position).await?;
    let (session_id, t) = use_case::status(&state, caller.user_id, caller.is_admin(), transcript_id).await?;
    Ok(Json(doc(session_id, &t)))
}
