//! A visitor starts a conversation: the input checked, a chatbot or an operator found, the
//! conversation written through the assignment sequence.

use domain::routing::Visitor;
use domain::session::{self, Start, VisitorInput};
use domain::values::Country;
use uuid::Uuid;

use super::assignment::{assign, Slot};
use super::bot::{for_start, settle};
use super::lookup::{channel, on_session};
use super::routing::route;
use super::ConversationError;
use crate::{App, Context};

/// What a visitor sends to start, as read from the request.
#[derive(Clone, Debug, Default)]
pub struct StartInput {
    /// Chosen by the caller: the visitor token names it.
    pub session_id: Uuid,
    pub channel_id: Uuid,
    pub name: Option<String>,
    pub url: Option<String>,
    /// The operator the widget remembers from an earlier chat.
    pub previous_operator: Option<Uuid>,
    /// Best first, as sent or as `Accept-Language` gave them.
    pub languages: Vec<String>,
    pub country: Option<Country>,
    /// The digest of the visitor token for `session_id` (the token itself is the caller's
    /// credential and is never stored).
    pub visitor_token_sha256: String,
}

/// Starts a conversation; its id. A chatbot answers first when the channel's rules give one
/// (routing waits for its forward step); otherwise an operator with a free slot gets it, or
/// it waits in the channel's queue.
pub async fn start(app: &App, ctx: &Context, input: StartInput) -> Result<Uuid, ConversationError> {
    // All of the input is checked before anything is routed or claimed: a refused start
    // writes nothing, on the conversation's stream or on an operator's.
    let parsed = VisitorInput::parse(input.name.as_deref(), input.url.as_deref(), &input.languages)
        .map_err(ConversationError::Invalid)?;
    let c = channel(app, input.channel_id).await?;
    let session_id = input.session_id;
    let visitor = Visitor {
        previous_operator: input.previous_operator,
        languages: parsed.languages.clone(),
        country: input.country.clone(),
    };
    let script = for_start(app, &c, &parsed.page_url, input.country.as_ref()).await?;
    let operator = match script {
        Some(_) => None,
        None => route(app, ctx, &c, &visitor, session_id).await?,
    };
    // Visitors are numbered by the log's length.
    let number = app.events.count_after(store::Position::START, u64::MAX).await.unwrap_or(0) % 100_000;
    let start = Start {
        session_id,
        channel_id: input.channel_id,
        visitor_name: parsed.name,
        visitor_number: number,
        page_url: parsed.page_url,
        country: input.country,
        languages: parsed.languages,
        visitor_token_sha256: input.visitor_token_sha256,
        operator: operator.as_ref().map(Slot::assignee),
        welcome_message_id: Uuid::now_v7(),
        welcome_text: c.options.welcome_message.clone(),
    };
    let write = on_session(app, ctx, session_id, |s| match &script {
        Some(script) => session::start_with_bot(s, start.clone(), script.clone()),
        None => session::start(s, start.clone()),
    });
    // Only a store failure fails the write (the input was valid): the slot is given back.
    assign(app, ctx, session_id, operator.as_ref(), write, |_, _| true).await??;
    if script.is_some() {
        settle(app, ctx, session_id).await?;
    }
    Ok(session_id)
}
