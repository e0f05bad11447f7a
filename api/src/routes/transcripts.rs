//! Transcripts by email: the visitor asks once the conversation has ended, its operators or
//! an admin at any time; the answer is 202 and the outbox worker (`crate::mailer`) delivers.
//! Each requester can follow the delivery's status.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use commands::{execute, stream_id};
use domain::metadata::{Actor, ActorKind};
use domain::transcript::{self, Requester, Transcript, TranscriptError, Transcripts};
use projections::transcripts::{TranscriptDoc, VIEW};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{context, invalid, json_body, mark_position, path_id, read, refused, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::routes::streams::wait_for_view;
use crate::visitor::VisitorCaller;
use crate::AppState;
use commands::conversations as conversation;

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

impl From<TranscriptError> for Problem {
    fn from(e: TranscriptError) -> Self {
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            TranscriptError::NoConversation => Problem::not_found("no such conversation"),
            TranscriptError::NotFound => Problem::not_found("no such transcript"),
            TranscriptError::ConversationOpen => code(StatusCode::CONFLICT, "conversation-open"),
            TranscriptError::NotYours => code(StatusCode::FORBIDDEN, "not-your-conversation"),
            TranscriptError::TooMany => code(StatusCode::TOO_MANY_REQUESTS, "too-many-transcripts"),
            TranscriptError::IdReused => code(StatusCode::CONFLICT, "transcript-id-reused"),
            TranscriptError::NotPending => code(StatusCode::CONFLICT, "transcript-not-pending"),
            TranscriptError::Invalid(i) => invalid(vec![i.clone()]),
        }
    }
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

/// The transcripts of a conversation, from its stream (always current).
async fn transcripts_of(state: &AppState, session_id: Uuid) -> Result<Transcripts, Problem> {
    Ok(read::<Transcripts>(state, session_id).await?.state)
}

/// Who asks for which conversation's transcript, to where.
struct Ask {
    actor: Actor,
    session_id: Uuid,
    by: Requester,
    admin: bool,
    email: Option<String>,
}

/// Records the request; 202 with the transcript's status and where to follow it.
async fn ask(
    state: &AppState,
    headers: &HeaderMap,
    Ask { actor, session_id, by, admin, email }: Ask,
    location: impl Fn(Uuid) -> String,
) -> Result<Response, Problem> {
    let ctx = context(state, actor, headers);
    let transcript_id = ctx.new_id(&format!("transcript/{session_id}/{by:?}"));
    let (session, _) = conversation::session(state, session_id).await?;
    let r = transcript::Request { transcript_id, email: email.unwrap_or_default(), by, admin, now: ctx.now };
    let outcome =
        execute::<Transcripts, _>(state.events.as_ref(), &stream_id::<Transcripts>(session_id), &ctx, None, |t| {
            transcript::request(t, &session, r.clone())
        })
        .await
        .map_err(refused)?;
    let all = transcripts_of(state, session_id).await?;
    let t = all.all.get(&transcript_id).ok_or_else(|| Problem::not_found("no such transcript"))?;
    let mut res = (StatusCode::ACCEPTED, Json(doc(session_id, t))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location(transcript_id)) {
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
    let request = Ask { actor, session_id: id, by: Requester::Visitor, admin: false, email: req.email };
    ask(&state, &headers, request, |t| format!("/api/v1/public/sessions/{id}/transcripts/{t}")).await
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
    let all = transcripts_of(&state, id).await?;
    // Transcripts operators sent elsewhere are not the visitor's to see.
    match all.all.get(&transcript_id) {
        Some(t) if t.requested_by == Requester::Visitor => Ok(Json(doc(id, t))),
        _ => Err(Problem::not_found("no such transcript")),
    }
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
    let request = Ask { actor: caller.actor(), session_id: id, by, admin: caller.is_admin(), email: req.email };
    ask(&state, &headers, request, |t| format!("/api/v1/transcripts/{t}")).await
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
    // The view only says which conversation it belongs to; its stream says where it stands.
    let indexed = state.views.get(VIEW, &transcript_id.to_string()).await?;
    let session_id = indexed
        .and_then(|d| serde_json::from_value::<TranscriptDoc>(d.body).ok())
        .map(|d| d.session_id)
        .ok_or_else(|| Problem::not_found("no such transcript"))?;
    let all = transcripts_of(&state, session_id).await?;
    let t = all.all.get(&transcript_id).ok_or_else(|| Problem::not_found("no such transcript"))?;
    let allowed = caller.is_admin()
        || t.requested_by == (Requester::Operator { id: caller.user_id })
        || conversation::session(&state, session_id).await?.0.handlers.contains(&caller.user_id);
    if !allowed {
        return Err(Problem::new(StatusCode::FORBIDDEN, "not-your-conversation", "this conversation is not yours"));
    }
    Ok(Json(doc(session_id, t)))
}
