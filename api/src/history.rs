//! A conversation's messages as both sides see them (a wire shape): folded from its stream.

use chrono::{DateTime, Utc};
use commands::stream_id;
use domain::session::Session;
use uuid::Uuid;

use crate::problem::Problem;
use crate::AppState;

/// Who wrote a message, as shown to either side (never a login or an email).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthorView {
    /// `operator`, `visitor`, `system` or `bot`.
    pub kind: &'static str,
    /// The operator's id (operators' side only needs it; visitors see it too, it is opaque).
    pub id: Option<Uuid>,
    /// The online chat name of an operator, or the visitor's name.
    pub name: String,
}

impl AuthorView {
    fn named(kind: &'static str, id: Option<Uuid>, name: String) -> Self {
        AuthorView { kind, id, name }
    }

    fn system() -> Self {
        AuthorView { kind: "system", id: None, name: String::new() }
    }
}

/// A message of a conversation's history.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub message_id: Uuid,
    pub author: AuthorView,
    /// Verbatim text (escape it when rendering HTML); empty once deleted.
    pub text: String,
    pub edited: bool,
    pub deleted: bool,
    pub welcome: bool,
    pub posted_at: DateTime<Utc>,
}

impl MessageView {
    /// A message as first posted (not edited, not deleted, not the welcome message).
    fn new(message_id: Uuid, author: AuthorView, text: String, posted_at: DateTime<Utc>) -> Self {
        MessageView { message_id, author, text, edited: false, deleted: false, welcome: false, posted_at }
    }
}

/// Folds session events into messages; `visitor` and `names` carry the names known so far.
fn fold_messages(
    events: &[store::RecordedEvent],
    visitor: &mut String,
    names: &mut std::collections::HashMap<Uuid, String>,
    out: &mut Vec<MessageView>,
) -> Result<(), Problem> {
    use domain::session::{Party, SessionEvent};
    for e in events {
        let event: SessionEvent = domain::aggregate::decode_versioned(&e.event_type, e.schema_version, &e.data)
            .map_err(|err| {
                tracing::error!(error = %err, stream = %e.stream_id, "stored session event unreadable");
                Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            })?;
        let bot = |names: &std::collections::HashMap<Uuid, String>| {
            AuthorView::named("bot", None, names.get(&Uuid::nil()).cloned().unwrap_or_default())
        };
        let message = |message_id, author, text| MessageView::new(message_id, author, text, e.recorded_at);
        match event {
            SessionEvent::SessionStarted { visitor_name, .. } => *visitor = visitor_name,
            SessionEvent::OperatorAssigned { operator_id, display_name, .. } => {
                names.insert(operator_id, display_name);
            }
            SessionEvent::MessagePosted { message_id, author, text, welcome } => {
                let author = match author {
                    Party::Operator { id } => {
                        AuthorView::named("operator", Some(id), names.get(&id).cloned().unwrap_or_default())
                    }
                    Party::Visitor => AuthorView::named("visitor", None, visitor.clone()),
                    Party::System => AuthorView::system(),
                };
                out.push(MessageView { welcome, ..message(message_id, author, text) });
            }
            // A replaced rating stays as it was: each rating is its own message.
            SessionEvent::ConversationRated { message_id, value, feedback, .. } => out.push(message(
                message_id,
                AuthorView::system(),
                domain::session::rating_message(value, feedback.as_deref()),
            )),
            // The bot's name is kept under the nil id, which no operator has.
            SessionEvent::ChatbotStarted { script } => {
                names.insert(Uuid::nil(), script.author_name);
            }
            SessionEvent::ChatbotStepPosted { message_id, text, .. }
            | SessionEvent::ChatbotSaid { message_id, text } => out.push(message(message_id, bot(names), text)),
            SessionEvent::ChatbotRestarted { message_id } => {
                out.push(message(message_id, bot(names), domain::bot_runtime::RESTARTING.into()))
            }
            SessionEvent::ChatbotAnswered { message_id, text, .. } => {
                out.push(message(message_id, AuthorView::named("visitor", None, visitor.clone()), text))
            }
            SessionEvent::MessageEdited { message_id, text } => {
                if let Some(m) = out.iter_mut().find(|m| m.message_id == message_id) {
                    m.text = text;
                    m.edited = true;
                }
            }
            SessionEvent::MessageDeleted { message_id } => {
                if let Some(m) = out.iter_mut().find(|m| m.message_id == message_id) {
                    m.text.clear();
                    m.deleted = true;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The conversation's messages in order, from its stream (always current).
pub async fn history(state: &AppState, session_id: Uuid) -> Result<Vec<MessageView>, Problem> {
    let events = store::read_whole_stream(state.events.as_ref(), &stream_id::<Session>(session_id), 0).await?;
    let (mut visitor, mut names, mut out) = (String::new(), Default::default(), Vec::new());
    fold_messages(&events, &mut visitor, &mut names, &mut out)?;
    Ok(out)
}

/// One message as stored now, read from the end of the stream (a just-posted message is
/// there), falling back to the whole history for an old one.
pub async fn message(state: &AppState, session_id: Uuid, message_id: Uuid) -> Result<MessageView, Problem> {
    let stream = stream_id::<Session>(session_id);
    let mut recent = state.events.read_stream(&stream, u64::MAX, store::Direction::Backward, 100).await?;
    recent.reverse();
    // The visitor's name is in the first event: read it only if the window does not reach it.
    let mut events = match recent.first() {
        Some(e) if e.stream_version == 0 => vec![],
        _ => state.events.read_stream(&stream, 0, store::Direction::Forward, 1).await?,
    };
    events.extend(recent);
    let (mut visitor, mut names, mut out) = (String::new(), std::collections::HashMap::new(), Vec::new());
    fold_messages(&events, &mut visitor, &mut names, &mut out)?;
    let found = match out.into_iter().find(|m| m.message_id == message_id) {
        Some(m) => m,
        None => history(state, session_id)
            .await?
            .into_iter()
            .find(|m| m.message_id == message_id)
            .ok_or_else(|| Problem::not_found("no such message"))?,
    };
    let mut found = found;
    if found.author.kind == "operator" && found.author.name.is_empty() {
        if let Some(id) = found.author.id {
            found.author.name = state.users.get(state.events.as_ref(), id).await?.display_name().to_string();
        }
    }
    Ok(found)
}

/// A message just written, from the session state after the command and the time the
/// store recorded it (no read needed).
pub async fn written_message(
    state: &AppState,
    session: &Session,
    message_id: Uuid,
    posted_at: DateTime<Utc>,
) -> Result<MessageView, Problem> {
    use domain::session::Party;
    let m = session
        .messages
        .iter()
        .find(|m| m.message_id == message_id)
        .ok_or_else(|| Problem::not_found("no such message"))?;
    let author = match m.author {
        Party::Operator { id } => {
            let name = match session.operator_names.get(&id) {
                Some(n) => n.clone(),
                None => state.users.get(state.events.as_ref(), id).await?.display_name().to_string(),
            };
            AuthorView::named("operator", Some(id), name)
        }
        Party::Visitor => AuthorView::named("visitor", None, session.visitor_name.clone()),
        Party::System => AuthorView::system(),
    };
    Ok(MessageView {
        message_id,
        author,
        text: if m.deleted { String::new() } else { m.text.clone() },
        edited: m.edited,
        deleted: m.deleted,
        welcome: m.welcome,
        posted_at,
    })
}

/// A page of history: `limit` messages after `after` or before `before` (newest when neither).
pub fn page(
    all: Vec<MessageView>,
    after: Option<Uuid>,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<MessageView>, Problem> {
    let index = |id: Uuid| {
        all.iter()
            .position(|m| m.message_id == id)
            .ok_or_else(|| Problem::not_found("no such message in this conversation"))
    };
    let (start, end) = match (after, before) {
        (Some(a), _) => {
            let s = index(a)? + 1;
            (s, (s + limit).min(all.len()))
        }
        (None, Some(b)) => {
            let e = index(b)?;
            (e.saturating_sub(limit), e)
        }
        (None, None) => (all.len().saturating_sub(limit), all.len()),
    };
    Ok(all[start..end].to_vec())
}
