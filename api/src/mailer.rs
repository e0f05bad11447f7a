//! Transcripts as their visitor saw them: the rendering the outbox worker
//! (`commands::mailer`) sends, built on the message history's wire shape ([`history`]).

use std::sync::Arc;

use uuid::Uuid;

use crate::history;
use crate::problem::Problem;
use crate::AppState;
use commands::conversations as conversation;

use commands::mailer::{time, MailerError, Rendered};

/// The conversation as its visitor saw it: Odoo's subject ("Conversation with {operator}"),
/// then every message in order with its time and author (the operator's chat name, the
/// visitor's name), deleted messages as "(deleted)".
pub async fn render(state: &AppState, session_id: Uuid) -> Result<Rendered, Problem> {
    let (session, _) = conversation::session(state, session_id).await?;
    let operator = session.handlers.last().and_then(|id| session.operator_names.get(id)).cloned();
    let subject = match &operator {
        Some(name) => format!("Conversation with {name}"),
        None => "Your conversation".to_string(),
    };
    let messages = history::history(state, session_id).await?;
    let mut text = format!("{subject}\n");
    if let Some(first) = messages.first() {
        text.push_str(&format!("Started {}\n", time(first.posted_at)));
    }
    for m in &messages {
        let author = if m.author.name.is_empty() { "Livechat" } else { m.author.name.as_str() };
        let edited = if m.edited { " (edited)" } else { "" };
        let body = if m.deleted { "(deleted)" } else { m.text.as_str() };
        text.push_str(&format!("\n[{}] {author}{edited}:\n{body}\n", time(m.posted_at)));
    }
    Ok(Rendered { subject, text })
}

/// [`render`] for the outbox worker.
pub struct Transcript(pub AppState);

#[async_trait::async_trait]
impl commands::mailer::Render for Transcript {
    async fn render(&self, session_id: Uuid) -> Result<Rendered, String> {
        render(&self.0, session_id).await.map_err(|p| p.detail)
    }
}

/// The renderer of transcripts over `state`, for [`commands::mailer::run`].
pub fn renderer(state: &AppState) -> Arc<dyn commands::mailer::Render> {
    Arc::new(Transcript(state.clone()))
}

/// One pass of the outbox worker over `state` (see [`commands::mailer::deliver_due`]).
pub async fn deliver_due(state: &AppState) -> Result<usize, MailerError> {
    commands::mailer::deliver_due(state, &Transcript(state.clone())).await
}
