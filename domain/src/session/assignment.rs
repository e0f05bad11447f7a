//! Who handles a conversation: an operator takes it from the queue, or it is handed over.

use uuid::Uuid;

use super::errors::SessionError;
use super::events::{Assignment, Party, SessionEvent};
use super::state::{open, takes_part, Session, SessionStatus};

/// An operator takes a waiting conversation; with the stream's expected version, exactly one
/// of two operators trying at once wins.
pub fn take(
    state: &Session,
    operator_id: Uuid,
    display_name: &str,
    how: Assignment,
) -> Result<Vec<SessionEvent>, SessionError> {
    open(state)?;
    if state.status != SessionStatus::Waiting {
        return Err(SessionError::AlreadyTaken);
    }
    Ok(vec![SessionEvent::OperatorAssigned { operator_id, display_name: display_name.to_string(), how }])
}

/// Hands the conversation to another operator (`to`: id and display name) in `to_channel`, or
/// to that channel's queue when `to` is `None`. Only its operator (or an admin, `by_admin`)
/// may transfer it.
pub fn transfer(
    state: &Session,
    by: Party,
    by_admin: bool,
    to_channel: Uuid,
    to: Option<(Uuid, String)>,
) -> Result<Vec<SessionEvent>, SessionError> {
    open(state)?;
    if !by_admin && !matches!(by, Party::Operator { .. } if takes_part(state, by)) {
        return Err(SessionError::NotYours);
    }
    let mut events = vec![SessionEvent::SessionTransferred { from_operator: state.operator, to_channel }];
    events.push(match to {
        Some((operator_id, display_name)) => {
            SessionEvent::OperatorAssigned { operator_id, display_name, how: Assignment::Transferred }
        }
        None => SessionEvent::SessionQueued {},
    });
    Ok(events)
}
