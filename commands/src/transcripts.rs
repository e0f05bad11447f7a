//! Transcripts by email: recording a request (the outbox event the mailer delivers) and
//! reading where a delivery stands, for whom may see it.

use domain::transcript::{self, Requester, Transcript, TranscriptError, Transcripts};
use store::StoreError;
use uuid::Uuid;

use crate::conversations::{self as conversation, ConversationError};
use crate::{execute, load, stream_id, App, CommandError, Context, Outcome, StoreOrDecode};

/// Why a transcript use case did not go through (`api` maps each to a problem document).
#[derive(Debug, thiserror::Error)]
pub enum TranscriptUseError {
    #[error(transparent)]
    Transcript(#[from] CommandError<TranscriptError>),
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TranscriptError> for TranscriptUseError {
    fn from(e: TranscriptError) -> Self {
        TranscriptUseError::Transcript(CommandError::Domain(e))
    }
}

impl From<StoreOrDecode> for TranscriptUseError {
    fn from(e: StoreOrDecode) -> Self {
        TranscriptUseError::Transcript(e.into())
    }
}

/// Who asks for which conversation's transcript, to where.
#[derive(Clone, Debug)]
pub struct Ask {
    pub session_id: Uuid,
    pub by: Requester,
    pub admin: bool,
    pub email: Option<String>,
}

/// The transcripts of a conversation, from its stream (always current).
pub async fn of_session(app: &App, session_id: Uuid) -> Result<Transcripts, TranscriptUseError> {
    Ok(load::<Transcripts>(app.events.as_ref(), &stream_id::<Transcripts>(session_id)).await?.state)
}

fn find(all: &Transcripts, transcript_id: Uuid) -> Result<Transcript, TranscriptUseError> {
    all.all.get(&transcript_id).cloned().ok_or_else(|| TranscriptError::NotFound.into())
}

/// Records the request on the conversation's transcripts stream (the mailer's outbox); the
/// outcome and the transcript as it stands.
pub async fn request(app: &App, ctx: &Context, ask: Ask) -> Result<(Outcome, Transcript), TranscriptUseError> {
    let Ask { session_id, by, admin, email } = ask;
    let transcript_id = ctx.new_id(&format!("transcript/{session_id}/{by:?}"));
    let (session, _) = conversation::session(app, session_id).await?;
    let r = transcript::Request { transcript_id, email: email.unwrap_or_default(), by, admin, now: ctx.now };
    let outcome =
        execute::<Transcripts, _>(app.events.as_ref(), &stream_id::<Transcripts>(session_id), ctx, None, |t| {
            transcript::request(t, &session, r.clone())
        })
        .await?;
    Ok((outcome, find(&of_session(app, session_id).await?, transcript_id)?))
}

/// A transcript the visitor of `session_id` asked for (those operators sent elsewhere are
/// not the visitor's to see: `NotFound`).
pub async fn visitors(app: &App, session_id: Uuid, transcript_id: Uuid) -> Result<Transcript, TranscriptUseError> {
    let t = find(&of_session(app, session_id).await?, transcript_id)?;
    if t.requested_by != Requester::Visitor {
        return Err(TranscriptError::NotFound.into());
    }
    Ok(t)
}

/// A transcript with its conversation's id, for its requester, the conversation's operators
/// and admins (`NotYours` for anyone else).
pub async fn status(
    app: &App,
    user: Uuid,
    admin: bool,
    transcript_id: Uuid,
) -> Result<(Uuid, Transcript), TranscriptUseError> {
    // The view only says which conversation it belongs to; its stream says where it stands.
    let session_id = projections::transcripts::get(app.views.as_ref(), transcript_id)
        .await?
        .map(|d| d.session_id)
        .ok_or(TranscriptError::NotFound)?;
    let t = find(&of_session(app, session_id).await?, transcript_id)?;
    let allowed = admin
        || t.requested_by == (Requester::Operator { id: user })
        || conversation::session(app, session_id).await?.0.handlers.contains(&user);
    if !allowed {
        return Err(TranscriptError::NotYours.into());
    }
    Ok((session_id, t))
}
