//! Reading conversations and channels as the use cases need them.

use domain::channel::Channel;
use domain::session::{Session, SessionError, SessionEvent};
use projections::channels::ChannelDoc;
use store::StoreError;
use uuid::Uuid;

use super::ConversationError;
use crate::{execute_cached, load, stream_id, App, CommandError, Context, Outcome};

/// A channel as routing needs it, read from its stream.
pub async fn channel(app: &App, channel_id: Uuid) -> Result<Channel, ConversationError> {
    let c = load::<Channel>(app.events.as_ref(), &stream_id::<Channel>(channel_id)).await?.state;
    if c.id.is_none() || c.archived {
        return Err(ConversationError::ChannelNotFound);
    }
    Ok(c)
}

/// Every active channel, from the channels view.
pub async fn active_channels(app: &App) -> Result<Vec<ChannelDoc>, StoreError> {
    projections::channels::active(app.views.as_ref()).await
}

/// The channels (by the view) where `user_id` is an operator.
pub async fn channels_of(app: &App, user_id: Uuid) -> Result<Vec<ChannelDoc>, StoreError> {
    Ok(active_channels(app)
        .await?
        .into_iter()
        .filter(|doc| doc.operators.contains(&user_id) || doc.joined.contains(&user_id))
        .collect())
}

/// The conversation as its stream holds it now, `None` when there is no such stream.
pub(super) async fn current_session(app: &App, session_id: Uuid) -> Result<Option<Session>, ConversationError> {
    let loaded = app.sessions.current(app.events.as_ref(), &stream_id::<Session>(session_id)).await?;
    Ok(loaded.version.map(|_| loaded.state))
}

/// Runs a session command; its `Outcome`.
pub async fn on_session(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<SessionEvent>, SessionError>,
) -> Result<Outcome, ConversationError> {
    Ok(decide_on_session(app, ctx, session_id, decide).await?.0)
}

/// Runs a session command (from this node's cache of sessions); the outcome and the session
/// after it.
pub async fn decide_on_session(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<SessionEvent>, SessionError>,
) -> Result<(Outcome, Session), ConversationError> {
    Ok(run_on_session(app, ctx, session_id, decide).await?)
}

/// Runs a decision on a conversation, whatever its refusal type (the chatbot's have their
/// own), through this node's cache of sessions; the outcome and the session after it.
pub async fn run_on_session<E>(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<SessionEvent>, E>,
) -> Result<(Outcome, Session), CommandError<E>> {
    let stream = stream_id::<Session>(session_id);
    execute_cached(app.events.as_ref(), &app.sessions, &stream, ctx, decide).await
}

/// A session as it is now (this node's cached copy brought up to date), or `NotFound`.
pub async fn session(app: &App, session_id: Uuid) -> Result<(Session, u64), ConversationError> {
    let loaded = app.sessions.current(app.events.as_ref(), &stream_id::<Session>(session_id)).await?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok((loaded.state, v)),
        _ => Err(ConversationError::NotFound),
    }
}
