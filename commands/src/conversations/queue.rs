//! The queues and the sweeper's passes over conversations: routing waiting conversations,
//! freeing stale slots, abandoning conversations the visitor never wrote in.

use domain::routing::Visitor;
use domain::session::{self, Assignment, SessionStatus};
use domain::user::{release_stale, ReleaseReason, User};
use uuid::Uuid;

use super::assignment::{assign, release, stale_claims};
use super::lookup::{channel, channels_of, decide_on_session, on_session, session};
use super::routing::route;
use super::ConversationError;
use crate::{execute, stream_id, App, Context};

/// Frees every operator's stale slots (the sweeper's pass), each with its reason, then
/// routes the queues of the channels of whoever got a slot back. Returns the slots freed
/// (operator, conversation, reason).
pub async fn release_stale_claims(app: &App) -> Result<Vec<(Uuid, Uuid, ReleaseReason)>, ConversationError> {
    let now = app.clock.now();
    let ctx = Context::new(domain::metadata::Actor::system(), now);
    let mut freed = Vec::new();
    for summary in projections::users::all(app.views.as_ref()).await? {
        let user_id = summary.user_id;
        // One operator's failure does not keep the others' slots leaked.
        match release_stale_of(app, &ctx, user_id).await {
            Ok(stale) => freed.extend(stale.into_iter().map(|(s, r)| (user_id, s, r))),
            Err(e) => tracing::warn!(%user_id, error = %e, "cannot free stale conversation slots"),
        }
    }
    Ok(freed)
}

/// Frees one operator's stale slots; the slots freed.
async fn release_stale_of(
    app: &App,
    ctx: &Context,
    user_id: Uuid,
) -> Result<Vec<(Uuid, ReleaseReason)>, ConversationError> {
    let u = app.users.get(app.events.as_ref(), user_id).await?;
    if u.open_conversations.is_empty() {
        return Ok(vec![]);
    }
    let stale = stale_claims(app, user_id, &u, ctx.now).await?;
    if stale.is_empty() {
        return Ok(vec![]);
    }
    // Guarded by the stream's version; a slot freed meanwhile by another path is not freed twice.
    let outcome =
        execute::<User, _>(app.events.as_ref(), &stream_id::<User>(user_id), ctx, None, |u| release_stale(u, &stale))
            .await?;
    if outcome.written == 0 {
        return Ok(vec![]);
    }
    tracing::info!(%user_id, slots = ?stale, "freed stale conversation slots");
    dispatch_for(app, ctx, user_id).await?;
    Ok(stale)
}

/// Routes the oldest waiting conversations of a channel while operators are available.
/// Called when someone joins, comes online or frees a slot; safe to call from anywhere and
/// concurrently (a conversation is assigned at most once: its stream's version decides).
pub async fn dispatch(app: &App, ctx: &Context, channel_id: Uuid) -> Result<usize, ConversationError> {
    let Ok(c) = channel(app, channel_id).await else { return Ok(0) };
    let waiting = projections::conversations::queue(app.views.as_ref(), channel_id, 50).await?;
    let mut routed = 0;
    for summary in waiting {
        let session_id = summary.session_id;
        let (s, _) = session(app, session_id).await?;
        if s.status != SessionStatus::Waiting {
            continue;
        }
        let visitor = Visitor { previous_operator: None, languages: s.languages.clone(), country: s.country.clone() };
        let Some(to) = route(app, ctx, &c, &visitor, session_id).await? else { break };
        let take = on_session(app, ctx, session_id, |s| session::take(s, to.operator, &to.name, Assignment::FromQueue));
        // Someone took it meanwhile: the slot was given back (if this pass took it).
        if assign(app, ctx, session_id, Some(&to), take, |_, _| true).await?.is_ok() {
            routed += 1;
        }
    }
    Ok(routed)
}

/// Routes the queues of every channel `user_id` is joined to (they became available).
pub async fn dispatch_for(app: &App, ctx: &Context, user_id: Uuid) -> Result<(), ConversationError> {
    for doc in channels_of(app, user_id).await? {
        if doc.joined.contains(&user_id) {
            dispatch(app, ctx, doc.channel_id).await?;
        }
    }
    Ok(())
}

/// Abandons every open conversation whose visitor never wrote and which started more than
/// `config.abandon_after` ago; frees their operators' slots. Returns how many.
pub async fn abandon_idle(app: &App) -> Result<usize, ConversationError> {
    let now = app.clock.now();
    let limit = chrono::Duration::from_std(app.config.abandon_after).unwrap_or(chrono::Duration::hours(1));
    let ctx = Context::new(domain::metadata::Actor::system(), now);
    let mut n = 0;
    for c in projections::conversations::all(app.views.as_ref()).await? {
        let visitor_wrote = c.order.iter().any(|(_, side)| *side == 'v');
        if c.status == SessionStatus::Closed || visitor_wrote || now - c.started_at < limit {
            continue;
        }
        // The operator whose slot is freed is the one at the close that wrote (not one read
        // before it: a transfer may land in between).
        let (outcome, after) = decide_on_session(app, &ctx, c.session_id, session::abandon).await?;
        if outcome.written > 0 {
            if let Some(operator) = after.operator {
                release(app, &ctx, operator, c.session_id).await?;
                if let Some(channel) = after.channel_id {
                    dispatch(app, &ctx, channel).await?;
                }
            }
            n += 1;
        }
    }
    Ok(n)
}
