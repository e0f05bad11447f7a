//! Closing a conversation: the close, then its operator's slot freed and the queue routed.

use domain::session::{self, Party, Session};
use uuid::Uuid;

use super::assignment::release;
use super::lookup::decide_on_session;
use super::queue::dispatch;
use super::ConversationError;
use crate::{App, Context, Outcome};

/// Closes a conversation as `by` (its operator, an admin when `admin`, or its visitor), then
/// frees its slot and routes its channel's queue.
pub async fn close(
    app: &App,
    ctx: &Context,
    by: Party,
    admin: bool,
    session_id: Uuid,
) -> Result<Outcome, ConversationError> {
    let (outcome, closed) =
        decide_on_session(app, ctx, session_id, |s| session::close(s, by, admin, Uuid::now_v7())).await?;
    // Closing twice frees nothing the second time.
    if outcome.written > 0 {
        after_close(app, ctx, &closed).await?;
    }
    Ok(outcome)
}

/// After a close that wrote: free the slot the conversation held and route the queue.
/// `closed` is the conversation as that close left it (its operator is the one at the close,
/// not one read before it: a transfer may have landed in between). A close that wrote
/// nothing (already closed) must not come here: that close's own call freed the slot.
async fn after_close(app: &App, ctx: &Context, closed: &Session) -> Result<(), ConversationError> {
    let Some(id) = closed.id else { return Ok(()) };
    if let Some(operator) = closed.operator {
        release(app, ctx, operator, id).await?;
    }
    if let Some(channel) = closed.channel_id {
        dispatch(app, ctx, channel).await?;
    }
    Ok(())
}
