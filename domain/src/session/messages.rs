//! Messages: posting, editing, deleting, what each side has seen, the pages visited.

use uuid::Uuid;

use super::errors::SessionError;
use super::events::{Party, SessionEvent};
use super::state::{open, takes_part, Message, Session};
use super::visitor_input::page_url;
use crate::limits::MAX_MESSAGE_CHARS;
use crate::values::Invalid;

/// A message text: not blank, at most 4,000 characters, kept verbatim.
pub fn message_text(text: &str) -> Result<String, Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new("text", "is required"));
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Invalid::new("text", format!("is longer than {MAX_MESSAGE_CHARS} characters")));
    }
    if text.contains('\0') {
        return Err(Invalid::new("text", "contains a NUL character"));
    }
    Ok(text.to_string())
}

/// Posts a message. A retry with the same message id and text changes nothing; the same id
/// with another text or author is refused. The visitor may write while waiting.
pub fn post(state: &Session, author: Party, message_id: Uuid, text: &str) -> Result<Vec<SessionEvent>, SessionError> {
    if let Some(i) = state.position(message_id) {
        let m = &state.messages[i];
        return if m.author == author && m.text == text { Ok(vec![]) } else { Err(SessionError::MessageIdReused) };
    }
    open(state)?;
    if !takes_part(state, author) {
        return Err(SessionError::NotYours);
    }
    let text = message_text(text)?;
    Ok(vec![SessionEvent::MessagePosted { message_id, author, text, welcome: false }])
}

fn own_message(state: &Session, by: Party, message_id: Uuid) -> Result<&Message, SessionError> {
    open(state)?;
    let m = state.position(message_id).map(|i| &state.messages[i]).ok_or(SessionError::MessageNotFound)?;
    if m.deleted {
        return Err(SessionError::MessageNotFound);
    }
    if m.author != by {
        return Err(SessionError::NotAuthor);
    }
    Ok(m)
}

/// An operator edits their own message; the log keeps every version.
pub fn edit(state: &Session, by: Party, message_id: Uuid, text: &str) -> Result<Vec<SessionEvent>, SessionError> {
    let m = own_message(state, by, message_id)?;
    let text = message_text(text)?;
    Ok(if m.text == text { vec![] } else { vec![SessionEvent::MessageEdited { message_id, text }] })
}

/// An operator deletes their own message.
pub fn delete(state: &Session, by: Party, message_id: Uuid) -> Result<Vec<SessionEvent>, SessionError> {
    own_message(state, by, message_id)?;
    Ok(vec![SessionEvent::MessageDeleted { message_id }])
}

/// `by` has seen the messages up to `up_to`; marks never move backwards.
pub fn seen(state: &Session, by: Party, up_to: Uuid) -> Result<Vec<SessionEvent>, SessionError> {
    if !state.exists() {
        return Err(SessionError::NotFound);
    }
    if !takes_part(state, by) {
        return Err(SessionError::NotYours);
    }
    let target = state.position(up_to).ok_or(SessionError::MessageNotFound)?;
    let current = match by {
        Party::Visitor => state.seen_by_visitor,
        _ => state.seen_by_operator,
    };
    if current.and_then(|c| state.position(c)).is_some_and(|c| c >= target) {
        return Ok(vec![]);
    }
    Ok(vec![SessionEvent::MessagesSeen { by, up_to }])
}

/// The visitor reports a page they visited during the conversation.
pub fn visit(state: &Session, url: &str) -> Result<Vec<SessionEvent>, SessionError> {
    open(state)?;
    Ok(vec![SessionEvent::PageVisited { url: page_url(url)? }])
}
