//! Chatbot runs in conversations: which script a new conversation gets, the visitor's answers
//! and restarts, and forwards settled through the channel's routing. Decisions are
//! `domain::session::bot_*`; this module only loads what they need and writes what they decide.

use domain::channel::Channel;
use domain::chatbot::{Chatbot, Script};
use domain::routing::Visitor;
use domain::rules::{match_rule, widget_decision};
use domain::session::{self, BotError, Session, SessionEvent};
use domain::values::Country;
use uuid::Uuid;

use super::assignment::{assign, Slot};
use super::lookup::{channel, run_on_session, session};
use super::routing::{candidates, route};
use super::ConversationError;
use crate::{load, stream_id, App, Context, Outcome};

/// The script a chatbot runs now (its current version), if it is active and has steps (Odoo
/// starts no other).
pub async fn runnable(app: &App, chatbot_id: Uuid) -> Result<Option<Script>, ConversationError> {
    let loaded = load::<Chatbot>(app.events.as_ref(), &stream_id::<Chatbot>(chatbot_id)).await?;
    match (loaded.state.active && !loaded.state.steps.is_empty(), loaded.version) {
        (true, Some(v)) => Ok(Some(loaded.state.script(v))),
        _ => Ok(None),
    }
}

/// The script a conversation starting on `url` gets: the matching rule's chatbot, unless it is
/// meant only for when nobody is available and an operator is online.
pub async fn for_start(
    app: &App,
    c: &Channel,
    url: &str,
    country: Option<&Country>,
) -> Result<Option<Script>, ConversationError> {
    let Some(rule) = match_rule(&c.rules, url, country) else { return Ok(None) };
    if rule.chatbot.is_none() {
        return Ok(None);
    }
    let available = !candidates(app, c, app.clock.now()).await?.is_empty();
    match widget_decision(Some(rule), available).0 {
        Some(bot) => runnable(app, bot.chatbot_id).await,
        None => Ok(None),
    }
}

/// Runs a chatbot decision on a conversation; the outcome and the conversation after it.
pub(super) async fn decide(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<SessionEvent>, BotError>,
) -> Result<(Outcome, Session), ConversationError> {
    Ok(run_on_session(app, ctx, session_id, decide).await?)
}

/// Settles the forwards the bot reached: routes as for a new conversation; the operator found
/// joins, and without one the script goes on (and may reach another forward).
pub async fn settle(app: &App, ctx: &Context, session_id: Uuid) -> Result<(), ConversationError> {
    for _ in 0..=domain::chatbot::MAX_STEPS {
        let (s, _) = session(app, session_id).await?;
        let Some(run) = s.bot.as_ref().filter(|r| r.forwarding && r.running()) else { return Ok(()) };
        let Some(step_id) = run.at.map(|i| run.script.steps[i].step_id) else { return Ok(()) };
        let c = channel(app, s.channel_id.unwrap_or_default()).await?;
        let visitor = Visitor { previous_operator: None, languages: s.languages.clone(), country: s.country.clone() };
        let operator = route(app, ctx, &c, &visitor, session_id).await?;
        let assignee = operator.as_ref().map(Slot::assignee);
        let seed = Uuid::now_v7();
        let settle = decide(app, ctx, session_id, |s| session::bot_forwarded(s, step_id, assignee.clone(), seed));
        // Settled meanwhile by another request: the slot is given back (if this one took it
        // and the conversation is not the operator's anyway).
        let kept = |(_, after): &(Outcome, Session), operator| after.operator == Some(operator);
        assign(app, ctx, session_id, operator.as_ref(), settle, kept).await??;
    }
    Ok(())
}

/// The visitor answers the step the bot waits on (a choice or a text), then the forwards it
/// reached are settled; the outcome and the conversation after the answer.
pub async fn answer(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    step_id: Uuid,
    message_id: Uuid,
    answer_id: Option<Uuid>,
    text: Option<&str>,
) -> Result<(Outcome, Session), ConversationError> {
    let decided =
        decide(app, ctx, session_id, |s| session::bot_answer(s, step_id, message_id, answer_id, text)).await?;
    settle(app, ctx, session_id).await?;
    Ok(decided)
}

/// The visitor restarts the script, then the forwards it reached are settled.
pub async fn restart(app: &App, ctx: &Context, session_id: Uuid, message_id: Uuid) -> Result<(), ConversationError> {
    decide(app, ctx, session_id, |s| session::bot_restart(s, message_id)).await?;
    settle(app, ctx, session_id).await
}
