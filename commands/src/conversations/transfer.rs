//! An operator takes a waiting conversation, or hands one to another operator or channel.

use domain::session::{self, Assignment, Party, Session};
use uuid::Uuid;

use super::assignment::{assign, claim_for, release};
use super::lookup::{channel, on_session, session};
use super::queue::dispatch;
use super::ConversationError;
use crate::{App, Context, Outcome};

/// `operator` (shown as `name`) takes a waiting conversation of a channel they operate; of
/// two trying at once, exactly one gets it (`already-taken` for the other).
pub async fn take(
    app: &App,
    ctx: &Context,
    operator: Uuid,
    name: &str,
    session_id: Uuid,
) -> Result<Outcome, ConversationError> {
    let (s, _) = session(app, session_id).await?;
    let c = channel(app, s.channel_id.unwrap_or_default()).await?;
    if !c.operators.contains(&operator) {
        return Err(ConversationError::NotChannelOperator);
    }
    let take = |s: &Session| session::take(s, operator, name, Assignment::Taken);
    // Refused on the conversation as it is now (closed, already taken) before any slot is
    // claimed; only a race lost meanwhile claims and gives back.
    take(&s)?;
    let max = c.options.max_conversations_per_operator;
    let slot = claim_for(app, ctx, operator, name.to_string(), session_id, max, ConversationError::AtCapacity).await?;
    assign(app, ctx, session_id, Some(&slot), on_session(app, ctx, session_id, take), |_, _| true).await?
}

/// Hands a conversation to an operator and/or channel (the transfer route and `/transfer`),
/// as operator `by` (an admin when `admin`): the new operator's slot is claimed first and
/// freed again if the conversation refuses; the previous operator's is freed after.
pub async fn hand_over(
    app: &App,
    ctx: &Context,
    by: Uuid,
    admin: bool,
    session_id: Uuid,
    operator_id: Option<Uuid>,
    channel_id: Option<Uuid>,
) -> Result<Outcome, ConversationError> {
    let (before, _) = session(app, session_id).await?;
    let to_channel = channel_id.or(before.channel_id).unwrap_or_default();
    let c = channel(app, to_channel).await?;
    let decide = |s: &Session, to: Option<(Uuid, String)>| {
        session::transfer(s, Party::Operator { id: by }, admin, to_channel, to)
    };
    let to = match operator_id {
        Some(op) => {
            let u = app.users.get(app.events.as_ref(), op).await?;
            if !u.exists() || !u.active || !c.operators.contains(&op) {
                return Err(ConversationError::NotTargetOperator);
            }
            // Refused on the conversation as it is now (closed, not the caller's) before the
            // new operator's slot is claimed.
            decide(&before, Some((op, String::new())))?;
            let max = c.options.max_conversations_per_operator;
            let name = u.display_name().to_string();
            Some(claim_for(app, ctx, op, name, session_id, max, ConversationError::OperatorAtCapacity).await?)
        }
        None => None,
    };
    let assignee = to.as_ref().map(|slot| slot.assignee());
    // The operator the transfer that wrote took it from (not `before`'s: another transfer
    // may land in between); the last decision is the one written.
    let from = std::sync::Mutex::new(None);
    let moved = on_session(app, ctx, session_id, |s| {
        *from.lock().unwrap_or_else(|p| p.into_inner()) = s.operator;
        decide(s, assignee.clone())
    });
    let outcome = assign(app, ctx, session_id, to.as_ref(), moved, |_, _| true).await??;
    // The previous operator's slot is freed, unless they are also the new one.
    let previous = from.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(previous) = previous.filter(|p| assignee.as_ref().is_none_or(|(op, _)| op != p)) {
        release(app, ctx, previous, session_id).await?;
    }
    if to.is_none() {
        dispatch(app, ctx, to_channel).await?;
    }
    Ok(outcome)
}
