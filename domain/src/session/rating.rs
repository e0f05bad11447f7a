//! The visitor's rating of a conversation.

use uuid::Uuid;

use super::errors::SessionError;
use super::events::{Party, SessionEvent};
use super::state::Session;
use crate::values::Invalid;

/// Longest rating feedback, in characters.
pub const MAX_FEEDBACK_CHARS: usize = 4000;
/// Rating values, as Odoo's livechat offers them (its faces).
pub const HAPPY: u8 = 5;
pub const NEUTRAL: u8 = 3;
pub const UNHAPPY: u8 = 1;

/// The visitor rates the conversation, open or closed, once an operator has handled it:
/// `value` 5 (happy), 3 (neutral) or 1 (unhappy), optional feedback. Rating again replaces
/// the rating (a new event and a new system message). A retry with the same message id and
/// the same rating changes nothing.
pub fn rate(
    state: &Session,
    by: Party,
    value: i64,
    feedback: Option<&str>,
    message_id: Uuid,
) -> Result<Vec<SessionEvent>, SessionError> {
    if !state.exists() {
        return Err(SessionError::NotFound);
    }
    if by != Party::Visitor {
        return Err(SessionError::NotYours);
    }
    let value = match value {
        1 | 3 | 5 => value as u8,
        _ => return Err(Invalid::new("value", format!("{value} is not 5 (happy), 3 (neutral) or 1 (unhappy)")).into()),
    };
    let feedback = match feedback.filter(|f| !f.trim().is_empty()) {
        Some(f) if f.chars().count() > MAX_FEEDBACK_CHARS => {
            return Err(Invalid::new("feedback", format!("is longer than {MAX_FEEDBACK_CHARS} characters")).into())
        }
        Some(f) if f.contains('\0') => return Err(Invalid::new("feedback", "contains a NUL character").into()),
        Some(f) => Some(f.to_string()),
        None => None,
    };
    if state.position(message_id).is_some() {
        let same = state
            .rating
            .as_ref()
            .is_some_and(|r| r.message_id == message_id && r.value == value && r.feedback == feedback);
        return if same { Ok(vec![]) } else { Err(SessionError::MessageIdReused) };
    }
    let (operator_id, channel_id) = match &state.rating {
        Some(r) => (r.operator_id, r.channel_id),
        None => {
            let operator = state.operator.or(state.handlers.last().copied());
            // Counted where it started, as the conversation itself is (not where it moved).
            match (operator, state.started_channel_id.or(state.channel_id)) {
                (Some(o), Some(c)) => (o, c),
                // Nobody answered: there is nobody to rate (Odoo's rating needs an operator).
                _ => return Err(Invalid::new("value", "nobody has answered this conversation yet").into()),
            }
        }
    };
    Ok(vec![SessionEvent::ConversationRated { message_id, value, feedback, operator_id, channel_id }])
}
