//! Writing in a conversation: the visitor's and the operators' posts, the authors' edits and
//! deletes, seen marks and the pages the visitor reports.

use domain::session::{self, text_answers, Party, Session};
use uuid::Uuid;

use super::bot;
use super::lookup::{decide_on_session, on_session, session};
use super::ConversationError;
use crate::{App, Context, Outcome};

/// The visitor writes (also while waiting for an operator). While the bot waits for typed
/// text, what the visitor writes is the answer (as in Odoo), and the forwards it reaches are
/// settled. The outcome and the conversation after the post (or the answer).
pub async fn visitor_post(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    message_id: Uuid,
    text: &str,
) -> Result<(Outcome, Session), ConversationError> {
    let (now, _) = session(app, session_id).await?;
    if let Some(step_id) = text_answers(&now) {
        return bot::answer(app, ctx, session_id, step_id, message_id, None, Some(text)).await;
    }
    decide_on_session(app, ctx, session_id, |s| session::post(s, Party::Visitor, message_id, text)).await
}

/// Operator `by` writes in the conversation; the outcome and the conversation after it.
pub async fn operator_post(
    app: &App,
    ctx: &Context,
    by: Uuid,
    session_id: Uuid,
    message_id: Uuid,
    text: &str,
) -> Result<(Outcome, Session), ConversationError> {
    decide_on_session(app, ctx, session_id, |s| session::post(s, Party::Operator { id: by }, message_id, text)).await
}

/// Operator `by` edits a message of theirs.
pub async fn edit(
    app: &App,
    ctx: &Context,
    by: Uuid,
    session_id: Uuid,
    message_id: Uuid,
    text: &str,
) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::edit(s, Party::Operator { id: by }, message_id, text)).await
}

/// Operator `by` deletes a message of theirs.
pub async fn delete(
    app: &App,
    ctx: &Context,
    by: Uuid,
    session_id: Uuid,
    message_id: Uuid,
) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::delete(s, Party::Operator { id: by }, message_id)).await
}

/// `by` (the visitor or an operator) has seen the messages up to `up_to`.
pub async fn seen(
    app: &App,
    ctx: &Context,
    by: Party,
    session_id: Uuid,
    up_to: Uuid,
) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::seen(s, by, up_to)).await
}

/// The visitor reports a page they visited during the conversation.
pub async fn visit(app: &App, ctx: &Context, session_id: Uuid, url: &str) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::visit(s, url)).await
}

/// The visitor leaves: the conversation closes ("Visitor left the conversation.").
pub async fn leave(app: &App, ctx: &Context, session_id: Uuid) -> Result<Outcome, ConversationError> {
    super::close(app, ctx, Party::Visitor, false, session_id).await
}
