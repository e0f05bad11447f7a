//! The transcript outbox worker: reads the pending transcripts, has each conversation
//! rendered as its visitor saw it (by a [`Render`] of the caller's: `api` owns the message
//! history's shape), delivers it (SMTP when configured, else an `.eml` file) and records the
//! outcome of every attempt as an event on the conversation's transcript stream.
//!
//! Delivery is at least once: a mail handed to the server whose outcome could not be
//! recorded is sent again; its `Message-ID` is the transcript's, so mail clients can fold
//! the copies. SMTP is plain (no STARTTLS): point `--smtp` at a local relay that handles TLS.

use std::sync::Arc;
use std::time::Duration;

use domain::metadata::Actor;
use domain::transcript::{self, Delivery, TranscriptError, TranscriptStatus, Transcripts};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use store::StoreError;
use uuid::Uuid;

use crate::worker::{run_owned, Shutdown};
use crate::{execute, load, stream_id, App, CommandError, Context, MailerConfig, StoreOrDecode};

/// How often the worker looks for due transcripts (`livechat serve`).
pub const MAILER_EVERY: Duration = Duration::from_secs(5);

/// The mailer's lease: one node at a time sends.
const OWNER: &str = "transcript_mailer";

/// Why an attempt could not be made or its outcome not recorded (tried again next pass).
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Load(#[from] StoreOrDecode),
    /// The conversation could not be read to render it.
    #[error("{0}")]
    Render(String),
    #[error(transparent)]
    Record(#[from] CommandError<TranscriptError>),
}

/// A transcript ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

/// Renders a conversation as its visitor saw it; an error is the reason it could not be read.
#[async_trait::async_trait]
pub trait Render: Send + Sync {
    async fn render(&self, session_id: Uuid) -> Result<Rendered, String>;
}

/// `host:port` as `--smtp` takes it.
pub fn parse_smtp(raw: &str) -> Result<(String, u16), String> {
    let (host, port) = raw.rsplit_once(':').ok_or_else(|| format!("'{raw}' is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("'{port}' is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(format!("'{raw}' is not HOST:PORT"));
    }
    Ok((host.to_string(), port))
}

/// Checks a `From` address before anything starts.
pub fn parse_from(raw: &str) -> Result<Mailbox, String> {
    raw.parse::<Mailbox>().map_err(|e| format!("'{raw}' is not an email address: {e}"))
}

/// How a message time is printed: UTC, to the second.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The RFC 5322 message of a transcript.
pub fn message(
    config: &MailerConfig,
    transcript_id: Uuid,
    to: &str,
    rendered: &Rendered,
    date: chrono::DateTime<chrono::Utc>,
) -> Result<Message, String> {
    let from = parse_from(&config.from)?;
    let to: Mailbox = to.parse().map_err(|e| format!("'{to}' is not an email address: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject.clone())
        .date(date.into())
        .message_id(Some(format!("<{}@livechat>", transcript_id.simple())))
        .header(ContentType::TEXT_PLAIN)
        .body(rendered.text.clone())
        .map_err(|e| e.to_string())
}

/// What one attempt did.
enum Attempt {
    Sent(Delivery, String),
    Failed { error: String, permanent: bool },
}

async fn send(config: &MailerConfig, transcript_id: Uuid, message: Message) -> Attempt {
    match &config.smtp {
        Some((host, port)) => {
            let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                .port(*port)
                .timeout(Some(config.timeout))
                .build();
            match smtp.send(message).await {
                Ok(r) => {
                    Attempt::Sent(Delivery::Smtp, format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" ")))
                }
                Err(e) => Attempt::Failed { error: e.to_string(), permanent: e.is_permanent() },
            }
        }
        None => {
            let dir = config.dir.clone();
            let name = format!("{transcript_id}.eml");
            let bytes = message.formatted();
            let written = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
                std::fs::create_dir_all(&dir)?;
                // Written aside, then renamed: a reader never sees half a message.
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, &bytes)?;
                std::fs::rename(&tmp, dir.join(&name))?;
                Ok(name)
            })
            .await;
            match written {
                Ok(Ok(name)) => Attempt::Sent(Delivery::File, name),
                Ok(Err(e)) => Attempt::Failed { error: format!("cannot write the .eml file: {e}"), permanent: false },
                Err(e) => Attempt::Failed { error: format!("file writer failed: {e}"), permanent: false },
            }
        }
    }
}

/// One attempt at one transcript, if it is still pending and due; records the outcome.
/// Returns whether an attempt was made.
pub async fn attempt(
    app: &App,
    render: &dyn Render,
    session_id: Uuid,
    transcript_id: Uuid,
) -> Result<bool, MailerError> {
    let now = app.clock.now();
    let stream = stream_id::<Transcripts>(session_id);
    // The view may lag behind the last outcome: the stream decides.
    let current = load::<Transcripts>(app.events.as_ref(), &stream).await?.state;
    let Some(t) = transcript::due(&current, now).into_iter().find(|t| t.transcript_id == transcript_id).cloned() else {
        return Ok(false);
    };
    let config = &app.config.mailer;
    // The conversation could not be read (store trouble): try again on the next pass.
    let rendered = render.render(session_id).await.map_err(MailerError::Render)?;
    let outcome = match message(config, transcript_id, &t.email, &rendered, now) {
        Ok(m) => send(config, transcript_id, m).await,
        // An address or `From` the mail library refuses will not get better.
        Err(error) => Attempt::Failed { error, permanent: true },
    };
    let ctx = Context::new(Actor::system(), now);
    let recorded = execute::<Transcripts, _>(app.events.as_ref(), &stream, &ctx, None, |s| match &outcome {
        Attempt::Sent(via, detail) => transcript::delivered(s, transcript_id, *via, detail),
        Attempt::Failed { error, permanent } => transcript::failed(s, transcript_id, error, *permanent, now),
    })
    .await;
    match recorded {
        // Another attempt's outcome landed first (a second worker past ownership): keep it.
        Ok(_) | Err(CommandError::Domain(TranscriptError::NotPending)) => {}
        Err(e) => return Err(e.into()),
    }
    match outcome {
        Attempt::Sent(via, detail) => tracing::info!(%transcript_id, ?via, %detail, "transcript delivered"),
        Attempt::Failed { error, permanent } => {
            tracing::warn!(%transcript_id, attempt = t.attempts + 1, permanent, %error, "transcript not delivered")
        }
    }
    Ok(true)
}

/// One pass of the worker: an attempt at every pending transcript that is due. Returns how
/// many attempts were made. One transcript's trouble does not hold up the others.
pub async fn deliver_due(app: &App, render: &dyn Render) -> Result<usize, MailerError> {
    let now = app.clock.now();
    let mut made = 0;
    // Listed by next attempt time: stop at the first that is not due.
    for doc in projections::transcripts::pending(app.views.as_ref()).await? {
        if doc.status != TranscriptStatus::Pending {
            continue;
        }
        if doc.next_attempt_at.is_some_and(|t| t > now) {
            break;
        }
        match attempt(app, render, doc.session_id, doc.transcript_id).await {
            Ok(true) => made += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(transcript_id = %doc.transcript_id, error = %e, "transcript attempt failed"),
        }
    }
    Ok(made)
}

/// Runs [`deliver_due`] every `every` on the one node that owns the mailer, until `shutdown`.
pub async fn run(app: App, render: Arc<dyn Render>, every: Duration, shutdown: Shutdown) {
    run_owned(&app, OWNER, every, shutdown, || {
        let (app, render) = (app.clone(), render.clone());
        async move {
            if let Err(e) = deliver_due(&app, render.as_ref()).await {
                tracing::warn!(error = %e, "transcript pass failed");
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_addresses_are_host_and_port() {
        assert_eq!(parse_smtp("mail.example.com:25"), Ok(("mail.example.com".into(), 25)));
        assert_eq!(parse_smtp("[::1]:2525"), Ok(("::1".into(), 2525)));
        for bad in ["mail.example.com", ":25", "host:0", "host:x", "host:70000"] {
            assert!(parse_smtp(bad).is_err(), "{bad}");
        }
        assert!(parse_from("livechat@localhost").is_ok());
        assert!(parse_from("not an address").is_err());
    }
}
