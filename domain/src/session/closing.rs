//! How a conversation ends: closed by a side, or abandoned.

use uuid::Uuid;

use super::errors::SessionError;
use super::events::{CloseReason, Party, SessionEvent};
use super::state::{takes_part, Session, SessionStatus};

/// The system message when the visitor leaves (Odoo's wording).
pub const VISITOR_LEFT: &str = "Visitor left the conversation.";

/// Ends the conversation; the visitor leaving also posts "Visitor left the conversation."
/// Closing twice changes nothing.
pub fn close(state: &Session, by: Party, by_admin: bool, message_id: Uuid) -> Result<Vec<SessionEvent>, SessionError> {
    if !state.exists() {
        return Err(SessionError::NotFound);
    }
    if state.status == SessionStatus::Closed {
        return Ok(vec![]);
    }
    if !by_admin && !takes_part(state, by) {
        return Err(SessionError::NotYours);
    }
    Ok(match by {
        Party::Visitor => vec![
            SessionEvent::MessagePosted {
                message_id,
                author: Party::System,
                text: VISITOR_LEFT.into(),
                welcome: false,
            },
            SessionEvent::SessionClosed {
                by,
                reason: CloseReason::VisitorLeft,
                started_channel_id: state.started_channel_id,
            },
        ],
        _ => vec![SessionEvent::SessionClosed {
            by,
            reason: CloseReason::ClosedByOperator,
            started_channel_id: state.started_channel_id,
        }],
    })
}

/// Closes a conversation in which the visitor never wrote (the caller decides it is old
/// enough); anything else changes nothing.
pub fn abandon(state: &Session) -> Result<Vec<SessionEvent>, SessionError> {
    if !state.exists() {
        return Err(SessionError::NotFound);
    }
    if state.status == SessionStatus::Closed || state.visitor_wrote() {
        return Ok(vec![]);
    }
    Ok(vec![SessionEvent::SessionClosed {
        by: Party::System,
        reason: CloseReason::Abandoned,
        started_channel_id: state.started_channel_id,
    }])
}
