//! Running commands from HTTP requests: who acts, idempotency keys, `If-Match`, and how each
//! refusal becomes a problem document.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use commands::accounts::AccountError;
use commands::channels::ChannelCommandError;
use commands::conversations::ConversationError;
use commands::{CommandError, Context, Outcome};
use domain::channel::ChannelError;
use domain::metadata::Actor;
use domain::user::{LoginError, UserError};
use domain::values::Invalid;

use crate::problem::{FieldError, Problem};
use crate::written::POSITION_HEADER;
use crate::AppState;

/// A command context for `actor`, with the request's `Idempotency-Key` and `X-Request-Id`.
pub fn context(state: &AppState, actor: Actor, headers: &HeaderMap) -> Context {
    let mut ctx = Context::new(actor, state.clock.now());
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string());
    ctx.idempotency_key = text("idempotency-key").filter(|k| !k.is_empty() && k.len() <= 200);
    ctx.request_id = text("x-request-id").filter(|k| !k.is_empty() && k.len() <= 200);
    ctx.client = text(crate::CLIENT_HEADER).map(|address| match ctx.actor.kind {
        domain::metadata::ActorKind::Visitor => keyed_hash(&state.http.address_key, &address),
        _ => address,
    });
    ctx
}

/// `h:` and 32 hex digits of SHA-256(key, address): the same visitor address gives the same
/// value under one key, and the address cannot be read back without it.
pub fn keyed_hash(key: &str, address: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(address.as_bytes());
    let hex: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("h:{hex}")
}

/// Aggregate `A` with this id, read from its stream; a store failure as a problem document.
pub async fn read<A: domain::Aggregate>(
    state: &AppState,
    id: impl std::fmt::Display,
) -> Result<commands::Loaded<A>, Problem> {
    commands::load::<A>(state.events.as_ref(), &commands::stream_id::<A>(id))
        .await
        .map_err(|e| refused::<Problem>(e.into()))
}

/// The version in an `If-Match` header (`"3"` or `3`); 400 if it is not one.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(raw) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let v = raw.to_str().unwrap_or_default().trim().trim_start_matches("W/").trim_matches('"');
    v.parse().map(Some).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-if-match",
            "If-Match must be an ETag returned by this API, like \"3\"",
        )
    })
}

/// A path id; anything that is not a UUID names nothing, so it is a 404 like an unknown one.
pub fn path_id(raw: &str, what: &str) -> Result<uuid::Uuid, Problem> {
    uuid::Uuid::try_parse(raw).map_err(|_| Problem::not_found(format!("no such {what}")))
}

/// Marks a response with the position the write produced (nothing if it wrote nothing).
pub fn mark_position(res: &mut axum::response::Response, position: Option<store::Position>) {
    if let Some(v) = position.and_then(|p| HeaderValue::from_str(&p.to_string()).ok()) {
        res.headers_mut().insert(POSITION_HEADER, v);
    }
}

/// An `ETag` header for a stream version.
pub fn etag(version: Option<u64>) -> Option<(header::HeaderName, HeaderValue)> {
    version.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()).map(|h| (header::ETAG, h))
}

pub fn invalid(errors: Vec<Invalid>) -> Problem {
    Problem::invalid(errors.into_iter().map(|e| FieldError { field: e.field, message: e.message }).collect())
}

/// Maps a refused command to its problem document.
pub fn refused<E: Into<Problem>>(e: CommandError<E>) -> Problem {
    match e {
        CommandError::Domain(d) => d.into(),
        CommandError::Conflict { current } => {
            let mut p = Problem::new(
                StatusCode::CONFLICT,
                "version-conflict",
                match current {
                    Some(v) => {
                        format!("the resource changed meanwhile: it is now at version \"{v}\"; reload and retry")
                    }
                    None => "the resource changed meanwhile; reload and retry".to_string(),
                },
            );
            p.current_version = current;
            p
        }
        // Only other nodes make a command lose its stream, and it kept losing for seconds:
        // not the caller's conflict (they sent no `If-Match`), so not a 409.
        CommandError::Busy => {
            tracing::warn!(tried = ?commands::RETRY_FOR, "command gave up after losing its stream's races");
            // This command wrote nothing; `settle_outcome` makes it `unknown` if the request
            // appended something before.
            let mut p =
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the resource is busy; retry in a moment");
            p.outcome = Some(crate::problem::Outcome::NotApplied);
            p.retry_after = Some(1);
            p
        }
        CommandError::Decode(e) => {
            tracing::error!(error = %e, "stored event unreadable");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        }
        CommandError::Store(e) => e.into(),
    }
}

/// A JSON request body, or why it could not be read (taken as `Result` so the handler can
/// answer with a problem document instead of axum's plain-text rejection).
pub type Body<T> = Result<axum::Json<T>, axum::extract::rejection::JsonRejection>;

/// The body, or 400 `bad-json` saying what is wrong with it.
pub fn json_body<T>(body: Body<T>) -> Result<T, Problem> {
    body.map(|axum::Json(b)| b).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad-json", e.body_text()))
}

/// Result of a command for handlers: the outcome or a problem.
pub type Done = Result<Outcome, Problem>;

impl From<UserError> for Problem {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NotFound => Problem::not_found("no such user"),
            UserError::AlreadyExists => Problem::new(StatusCode::CONFLICT, "already-exists", e.to_string()),
            UserError::Deactivated => Problem::new(StatusCode::CONFLICT, "user-deactivated", e.to_string()),
            UserError::AtCapacity => Problem::new(StatusCode::CONFLICT, "operator-at-capacity", e.to_string()),
            UserError::Invalid(i) => invalid(vec![i]),
        }
    }
}

impl From<LoginError> for Problem {
    fn from(e: LoginError) -> Self {
        let mut p = invalid(vec![Invalid::new("login", "is already used by another user")]);
        p.status = StatusCode::CONFLICT;
        p.code = "login-taken";
        p.detail = e.to_string();
        p
    }
}

impl From<domain::session::SessionError> for Problem {
    fn from(e: domain::session::SessionError) -> Self {
        use domain::session::SessionError as E;
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            E::NotFound => Problem::not_found("no such conversation"),
            E::MessageNotFound => code(StatusCode::NOT_FOUND, "message-not-found"),
            E::AlreadyExists => code(StatusCode::CONFLICT, "already-exists"),
            E::Closed => code(StatusCode::CONFLICT, "conversation-closed"),
            E::AlreadyTaken => code(StatusCode::CONFLICT, "already-taken"),
            E::MessageIdReused => code(StatusCode::CONFLICT, "message-id-reused"),
            E::NotYours => code(StatusCode::FORBIDDEN, "not-your-conversation"),
            E::NotAuthor => code(StatusCode::FORBIDDEN, "not-the-author"),
            E::Invalid(i) => invalid(vec![i.clone()]),
        }
    }
}

impl From<ChannelError> for Problem {
    fn from(e: ChannelError) -> Self {
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            ChannelError::NotFound => Problem::not_found("no such channel"),
            ChannelError::RuleNotFound => code(StatusCode::NOT_FOUND, "rule-not-found"),
            ChannelError::UnknownUser => code(StatusCode::UNPROCESSABLE_ENTITY, "unknown-user"),
            ChannelError::AlreadyExists => code(StatusCode::CONFLICT, "already-exists"),
            ChannelError::Archived => code(StatusCode::CONFLICT, "channel-archived"),
            ChannelError::AlreadyOperator => code(StatusCode::CONFLICT, "already-operator"),
            ChannelError::NotOperator => code(StatusCode::CONFLICT, "not-operator"),
            ChannelError::Invalid(errors) => invalid(errors.clone()),
        }
    }
}

impl From<commands::users::UserReadError> for Problem {
    fn from(e: commands::users::UserReadError) -> Self {
        match e {
            commands::users::UserReadError::Store(e) => e.into(),
            commands::users::UserReadError::Unreadable => {
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

/// The one mapping of the conversation use cases' refusals to problem documents.
impl From<ConversationError> for Problem {
    fn from(e: ConversationError) -> Self {
        let conflict = |detail: String| Problem::new(StatusCode::CONFLICT, "operator-at-capacity", detail);
        match e {
            ConversationError::NotFound => Problem::not_found("no such conversation"),
            ConversationError::ChannelNotFound => Problem::not_found("no such channel"),
            ConversationError::AtCapacity | ConversationError::OperatorAtCapacity => conflict(e.to_string()),
            ConversationError::NotChannelOperator => Problem::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            ConversationError::NotTargetOperator => invalid(vec![Invalid::new("operator_id", e.to_string())]),
            ConversationError::NotYours => Problem::new(StatusCode::FORBIDDEN, "not-your-conversation", e.to_string()),
            ConversationError::Invalid(errors) => invalid(errors),
            ConversationError::Store(e) => e.into(),
            ConversationError::Users(e) => e.into(),
            ConversationError::Load(e) => refused::<Problem>(e.into()),
            ConversationError::User(e) => refused(e),
            ConversationError::Session(e) => refused(e),
            ConversationError::Bot(e) => refused(e),
        }
    }
}

/// A chatbot decision's refusals (part of the conversation family above).
impl From<domain::session::BotError> for Problem {
    fn from(e: domain::session::BotError) -> Self {
        use domain::session::BotError;
        match e {
            BotError::Session(s) => s.into(),
            BotError::NotRunning => Problem::new(StatusCode::CONFLICT, "bot-not-running", e.to_string()),
            BotError::NotAwaited => Problem::new(StatusCode::CONFLICT, "not-the-current-step", e.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Catalog family: canned responses, chatbot scripts, transcripts, resource histories
// (`commands::{canned, chatbots, transcripts, audit}`) and their domain refusals.

impl From<domain::canned::CannedError> for Problem {
    fn from(e: domain::canned::CannedError) -> Self {
        use domain::canned::CannedError as E;
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            E::NotFound => Problem::not_found("no such canned response"),
            E::AlreadyExists => code(StatusCode::CONFLICT, "already-exists"),
            E::NotYours => code(StatusCode::FORBIDDEN, "not-your-canned-response"),
            E::OnlyAdminsShare => code(StatusCode::FORBIDDEN, "forbidden"),
            E::Invalid(errors) => invalid(errors.clone()),
        }
    }
}

impl From<domain::canned::ShortcutError> for Problem {
    fn from(e: domain::canned::ShortcutError) -> Self {
        let mut p = invalid(vec![Invalid::new("shortcut", "is already used by another canned response of this owner")]);
        p.status = StatusCode::CONFLICT;
        p.code = "shortcut-taken";
        p.detail = e.to_string();
        p
    }
}

impl From<commands::canned::CannedUseError> for Problem {
    fn from(e: commands::canned::CannedUseError) -> Self {
        use commands::canned::CannedUseError as E;
        match e {
            E::Canned(e) => refused(e),
            E::Shortcut(e) => refused(e),
            E::Users(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<domain::chatbot::ChatbotError> for Problem {
    fn from(e: domain::chatbot::ChatbotError) -> Self {
        use domain::chatbot::ChatbotError as E;
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            E::NotFound => Problem::not_found("no such chatbot"),
            E::StepNotFound => code(StatusCode::NOT_FOUND, "step-not-found"),
            E::AnswerNotFound => code(StatusCode::NOT_FOUND, "answer-not-found"),
            E::AlreadyExists => code(StatusCode::CONFLICT, "already-exists"),
            E::Invalid(errors) => invalid(errors.clone()),
        }
    }
}

impl From<commands::chatbots::ChatbotUseError> for Problem {
    fn from(e: commands::chatbots::ChatbotUseError) -> Self {
        use commands::chatbots::ChatbotUseError as E;
        match e {
            E::Chatbot(e) => refused(e),
            E::Bot(e) => refused(e),
            E::NoSteps => invalid(vec![Invalid::new("steps", e.to_string())]),
            E::NoDryRun => Problem::not_found("no such dry run"),
            E::Unreadable => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"),
            E::Store(e) => e.into(),
        }
    }
}

impl From<domain::transcript::TranscriptError> for Problem {
    fn from(e: domain::transcript::TranscriptError) -> Self {
        use domain::transcript::TranscriptError as E;
        let code = |s: StatusCode, c: &'static str| Problem::new(s, c, e.to_string());
        match &e {
            E::NoConversation => Problem::not_found("no such conversation"),
            E::NotFound => Problem::not_found("no such transcript"),
            E::ConversationOpen => code(StatusCode::CONFLICT, "conversation-open"),
            E::NotYours => code(StatusCode::FORBIDDEN, "not-your-conversation"),
            E::TooMany => code(StatusCode::TOO_MANY_REQUESTS, "too-many-transcripts"),
            E::IdReused => code(StatusCode::CONFLICT, "transcript-id-reused"),
            E::NotPending => code(StatusCode::CONFLICT, "transcript-not-pending"),
            E::Invalid(i) => invalid(vec![i.clone()]),
        }
    }
}

impl From<commands::transcripts::TranscriptUseError> for Problem {
    fn from(e: commands::transcripts::TranscriptUseError) -> Self {
        use commands::transcripts::TranscriptUseError as E;
        match e {
            E::Transcript(e) => refused(e),
            E::Conversation(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<commands::audit::HistoryError> for Problem {
    fn from(e: commands::audit::HistoryError) -> Self {
        match e {
            commands::audit::HistoryError::NotFound => Problem::not_found("no such resource"),
            commands::audit::HistoryError::Load(e) => refused::<Problem>(e.into()),
        }
    }
}

// Workers' family (presence): leaving channels, going offline.
impl From<commands::presence::PresenceError> for Problem {
    fn from(e: commands::presence::PresenceError) -> Self {
        use commands::presence::PresenceError as E;
        match e {
            E::Store(e) => e.into(),
            E::Channel(e) => refused(e),
            E::User(e) => refused(e),
        }
    }
}

// --- Accounts and channels (users, logins, channels, the first start) ------------------------

/// The one mapping of the account use cases' refusals to problem documents.
impl From<AccountError> for Problem {
    fn from(e: AccountError) -> Self {
        let internal = || Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error");
        match e {
            AccountError::Invalid(errors) => invalid(errors),
            AccountError::NotFound => Problem::not_found("no such user"),
            AccountError::NoSuchLogin(_) => Problem::not_found(e.to_string()),
            AccountError::WrongPassword => Problem::new(StatusCode::FORBIDDEN, "wrong-password", e.to_string()),
            AccountError::InvalidCredentials => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid-credentials", e.to_string())
            }
            AccountError::CannotDemoteSelf => Problem::new(StatusCode::CONFLICT, "cannot-demote-self", e.to_string()),
            AccountError::CannotDeactivateSelf => {
                Problem::new(StatusCode::CONFLICT, "cannot-deactivate-self", e.to_string())
            }
            AccountError::Hashing | AccountError::Unreadable => internal(),
            AccountError::Store(e) => e.into(),
            AccountError::Users(e) => e.into(),
            AccountError::Load(e) => refused::<Problem>(e.into()),
            AccountError::User(e) => refused(e),
            AccountError::Login(e) => refused(e),
            AccountError::Channel(e) => refused(e),
            AccountError::Conversation(e) => (*e).into(),
        }
    }
}

/// The one mapping of the channel use cases' refusals to problem documents.
impl From<ChannelCommandError> for Problem {
    fn from(e: ChannelCommandError) -> Self {
        match e {
            ChannelCommandError::UnknownChatbot(_) => {
                Problem::invalid(vec![FieldError { field: "chatbot_id".into(), message: e.to_string() }])
            }
            ChannelCommandError::Channel(e) => refused(e),
            ChannelCommandError::User(e) => refused(e),
            ChannelCommandError::Conversation(e) => (*e).into(),
            ChannelCommandError::Users(e) => e.into(),
            ChannelCommandError::Load(e) => refused::<Problem>(e.into()),
            ChannelCommandError::Store(e) => e.into(),
        }
    }
}
