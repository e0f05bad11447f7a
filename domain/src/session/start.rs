//! A conversation begins: routed to an operator or queued.

use uuid::Uuid;

use super::errors::SessionError;
use super::events::{Assignment, Party, SessionEvent};
use super::state::Session;
use super::visitor_input::{page_url, visitor_name};
use crate::values::Country;

/// A new conversation, as the caller prepared it (ids, token digest, routing result).
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub session_id: Uuid,
    pub channel_id: Uuid,
    pub visitor_name: Option<String>,
    /// The number in "Visitor #N" when no name is given.
    pub visitor_number: u64,
    pub page_url: String,
    pub country: Option<Country>,
    pub languages: Vec<String>,
    pub visitor_token_sha256: String,
    /// The routed operator and the name visitors see, or `None` when nobody is available.
    pub operator: Option<(Uuid, String)>,
    pub welcome_message_id: Uuid,
    pub welcome_text: String,
}

/// Starts a conversation: routed to an operator (who greets with the welcome message), or
/// queued when nobody is available.
pub fn start(state: &Session, s: Start) -> Result<Vec<SessionEvent>, SessionError> {
    if state.exists() {
        return Err(SessionError::AlreadyExists);
    }
    let (visitor_name, anonymous) = match visitor_name(s.visitor_name.as_deref())? {
        Some(n) => (n, false),
        None => (format!("Visitor #{}", s.visitor_number), true),
    };
    let mut events = vec![SessionEvent::SessionStarted {
        session_id: s.session_id,
        channel_id: s.channel_id,
        visitor_name,
        anonymous,
        page_url: page_url(&s.page_url)?,
        country: s.country,
        languages: s.languages,
        visitor_token_sha256: s.visitor_token_sha256,
    }];
    match s.operator {
        Some((operator_id, display_name)) => {
            events.push(SessionEvent::OperatorAssigned { operator_id, display_name, how: Assignment::Routed });
            if !s.welcome_text.trim().is_empty() {
                events.push(SessionEvent::MessagePosted {
                    message_id: s.welcome_message_id,
                    author: Party::Operator { id: operator_id },
                    text: s.welcome_text,
                    welcome: true,
                });
            }
        }
        None => events.push(SessionEvent::SessionQueued {}),
    }
    Ok(events)
}
