//! Chatbot runs in conversations: which script a new conversation gets, the visitor's answers,
//! and forwards settled through the channel's routing. Decisions are `domain::session::bot_*`;
//! this module only loads what they need and writes what they decide.

use axum::http::StatusCode;
use commands::{Context, Outcome};
use domain::channel::Channel;
use domain::chatbot::{Chatbot, Script};
use domain::routing::Visitor;
use domain::rules::{match_rule, widget_decision};
use domain::session::{self, BotError, Session, SessionEvent};
use domain::values::Country;
use uuid::Uuid;

use crate::commanding::{read, refused};
use crate::problem::Problem;
use crate::AppState;
use commands::conversations as conversation;

impl From<BotError> for Problem {
    fn from(e: BotError) -> Self {
        match e {
            BotError::Session(s) => s.into(),
            BotError::NotRunning => Problem::new(StatusCode::CONFLICT, "bot-not-running", e.to_string()),
            BotError::NotAwaited => Problem::new(StatusCode::CONFLICT, "not-the-current-step", e.to_string()),
        }
    }
}

/// The script a chatbot runs now (its current version), if it is active and has steps (Odoo
/// starts no other).
pub async fn runnable(state: &AppState, chatbot_id: Uuid) -> Result<Option<Script>, Problem> {
    let loaded = read::<Chatbot>(state, chatbot_id).await?;
    match (loaded.state.active && !loaded.state.steps.is_empty(), loaded.version) {
        (true, Some(v)) => Ok(Some(loaded.state.script(v))),
        _ => Ok(None),
    }
}

/// The script a conversation starting on `url` gets: the matching rule's chatbot, unless it is
/// meant only for when nobody is available and an operator is online.
pub async fn for_start(
    state: &AppState,
    c: &Channel,
    url: &str,
    country: Option<&Country>,
) -> Result<Option<Script>, Problem> {
    let Some(rule) = match_rule(&c.rules, url, country) else { return Ok(None) };
    if rule.chatbot.is_none() {
        return Ok(None);
    }
    let available = !conversation::candidates(state, c, state.clock.now()).await?.is_empty();
    match widget_decision(Some(rule), available).0 {
        Some(bot) => runnable(state, bot.chatbot_id).await,
        None => Ok(None),
    }
}

/// Runs a chatbot decision on a conversation; the outcome and the conversation after it.
pub async fn decide(
    state: &AppState,
    ctx: &Context,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<SessionEvent>, BotError>,
) -> Result<(Outcome, Session), Problem> {
    conversation::run_on_session(state, ctx, session_id, decide).await.map_err(refused)
}

/// Settles the forwards the bot reached: routes as for a new conversation; the operator found
/// joins, and without one the script goes on (and may reach another forward).
pub async fn settle(state: &AppState, ctx: &Context, session_id: Uuid) -> Result<(), Problem> {
    for _ in 0..=domain::chatbot::MAX_STEPS {
        let (s, _) = conversation::session(state, session_id).await?;
        let Some(run) = s.bot.as_ref().filter(|r| r.forwarding && r.running()) else { return Ok(()) };
        let Some(step_id) = run.at.map(|i| run.script.steps[i].step_id) else { return Ok(()) };
        let c = conversation::channel(state, s.channel_id.unwrap_or_default()).await?;
        let visitor = Visitor { previous_operator: None, languages: s.languages.clone(), country: s.country.clone() };
        let operator = conversation::route(state, ctx, &c, &visitor, session_id).await?;
        let assignee = operator.as_ref().map(conversation::Slot::assignee);
        let seed = Uuid::now_v7();
        let settle = decide(state, ctx, session_id, |s| session::bot_forwarded(s, step_id, assignee.clone(), seed));
        // Settled meanwhile by another request: the slot is given back (if this one took it
        // and the conversation is not the operator's anyway).
        let kept = |(_, after): &(Outcome, Session), operator| after.operator == Some(operator);
        conversation::assign(state, ctx, session_id, operator.as_ref(), settle, kept).await??;
    }
    Ok(())
}
