//! A visitor's conversation (a session): who handles it, its messages, what each side has
//! seen, and how it ends. One stream per conversation (`session-<uuid>`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::bot_runtime::{self, Reply, Stop};
use crate::chatbot::{Script, Step, StepType};
use crate::values::{Country, Invalid};

pub use crate::limits::{MAX_MESSAGE_CHARS, MAX_URL_CHARS};
/// The system message when the visitor leaves (Odoo's wording).
pub const VISITOR_LEFT: &str = "Visitor left the conversation.";
/// Longest visitor name, in characters.
pub const MAX_VISITOR_NAME_CHARS: usize = 100;
/// Most languages a visitor may give.
pub const MAX_LANGUAGES: usize = 10;
/// Longest rating feedback, in characters.
pub const MAX_FEEDBACK_CHARS: usize = 4000;
/// Rating values, as Odoo's livechat offers them (its faces).
pub const HAPPY: u8 = 5;
pub const NEUTRAL: u8 = 3;
pub const UNHAPPY: u8 = 1;

/// Odoo's `rating_text` for a livechat rating value: "Happy", "Neutral" or "Unhappy".
pub fn rating_label(value: u8) -> &'static str {
    match value {
        v if v >= 4 => "Happy",
        v if v >= 3 => "Neutral",
        _ => "Unhappy",
    }
}

/// The system message a rating shows in the history: "Rating: Unhappy", then the feedback
/// on its own line.
pub fn rating_message(value: u8, feedback: Option<&str>) -> String {
    match feedback {
        Some(f) => format!("Rating: {}\n{f}", rating_label(value)),
        None => format!("Rating: {}", rating_label(value)),
    }
}

/// Who did something in a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Party {
    Operator { id: Uuid },
    Visitor,
    System,
}

/// How an operator came to handle a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// Chosen by routing when the visitor started.
    Routed,
    /// Routed from the queue when someone became available.
    FromQueue,
    /// An operator took it from the queue.
    Taken,
    /// Handed over by another operator.
    Transferred,
}

/// Why a conversation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    VisitorLeft,
    ClosedByOperator,
    /// The visitor never wrote: left out of counts and reports.
    Abandoned,
}

/// Where a conversation stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Nobody was available: it waits in the channel's queue.
    #[default]
    Waiting,
    Active,
    Closed,
    /// A chatbot answers: not in the queue until its script ends without an operator.
    Bot,
}

/// What happened in a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum SessionEvent {
    SessionStarted {
        session_id: Uuid,
        channel_id: Uuid,
        visitor_name: String,
        /// No name was given: "Visitor #N".
        anonymous: bool,
        page_url: String,
        country: Option<Country>,
        languages: Vec<String>,
        /// SHA-256 of the visitor's token, scoped to this conversation.
        visitor_token_sha256: String,
    },
    /// Nobody was available; the conversation waits in the channel's queue.
    SessionQueued {},
    OperatorAssigned {
        operator_id: Uuid,
        /// The name the visitor sees (online chat name or name) at that moment.
        display_name: String,
        how: Assignment,
    },
    MessagePosted {
        message_id: Uuid,
        author: Party,
        /// Verbatim; escaped only when rendered as HTML.
        text: String,
        /// The channel's welcome message, posted as if by the operator.
        #[serde(default)]
        welcome: bool,
    },
    MessageEdited {
        message_id: Uuid,
        text: String,
    },
    MessageDeleted {
        message_id: Uuid,
    },
    /// `by` has seen every message up to and including `up_to`.
    MessagesSeen {
        by: Party,
        up_to: Uuid,
    },
    PageVisited {
        url: String,
    },
    /// Handed to another operator (then `OperatorAssigned`) or another channel.
    SessionTransferred {
        from_operator: Option<Uuid>,
        to_channel: Uuid,
    },
    SessionClosed {
        by: Party,
        reason: CloseReason,
        /// The channel the conversation started in, where it is counted.
        #[serde(default)]
        started_channel_id: Option<Uuid>,
    },
    /// The visitor rated the conversation; a later rating replaces this one (both stay in the
    /// log). It shows in the history as a system message with `message_id`.
    ConversationRated {
        message_id: Uuid,
        /// 5 (happy), 3 (neutral) or 1 (unhappy).
        value: u8,
        feedback: Option<String>,
        /// Who and where it rates: fixed by the first rating, as Odoo keeps `rated_partner_id`
        /// when a rating is overwritten. The channel is the one the conversation started in,
        /// where the dashboard and the reports count it (a transfer does not move it); events
        /// written before that rule name the channel it was in when first rated.
        operator_id: Uuid,
        channel_id: Uuid,
    },
    /// A chatbot took the conversation; it follows this copy of its script to the end, so
    /// editing the script never changes a running conversation.
    ChatbotStarted {
        script: Script,
    },
    /// The bot moved to a step and said its message (authored by the bot).
    ChatbotStepPosted {
        message_id: Uuid,
        step_id: Uuid,
        text: String,
    },
    /// The bot reached a `forward_operator` step; routing decides what follows.
    ChatbotForwarding {
        step_id: Uuid,
    },
    /// The visitor answered a step (a visitor message): the chosen answer or the raw text.
    /// An answer that is not `accepted` (an invalid email) does not count.
    ChatbotAnswered {
        message_id: Uuid,
        step_id: Uuid,
        answer_id: Option<Uuid>,
        text: String,
        accepted: bool,
    },
    /// The bot said something that is not a step (asking again after an invalid email).
    ChatbotSaid {
        message_id: Uuid,
        text: String,
    },
    /// The visitor restarted the script ("Restarting conversation..."): earlier answers stay
    /// in the log but no longer count.
    ChatbotRestarted {
        message_id: Uuid,
    },
    ChatbotEnded {
        outcome: BotOutcome,
    },
}

/// How a chatbot's run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BotOutcome {
    /// An operator was found at a `forward_operator` step.
    Forwarded { operator_id: Uuid },
    /// No step left; without an operator the conversation went to the queue.
    Finished,
    /// The visitor chose an answer with a redirect link.
    Redirected { link: String },
}

/// An answer the bot collected (since the last restart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Collected {
    pub step_id: Uuid,
    #[serde(skip)]
    pub step_type: StepType,
    /// The step's message (the question).
    pub question: String,
    pub answer_id: Option<Uuid>,
    pub answer: String,
}

/// A chatbot's run in a conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BotRun {
    pub script: Script,
    /// Index of the last step reached.
    pub at: Option<usize>,
    /// The step at `at` waits for the visitor.
    pub awaiting: bool,
    /// The step at `at` is a forward that routing has not settled yet.
    pub forwarding: bool,
    /// Accepted answers since the last restart, in order.
    pub answers: Vec<Collected>,
    pub ended: Option<BotOutcome>,
}

impl BotRun {
    /// Answer ids chosen so far (what "only if" conditions look at).
    pub fn chosen(&self) -> Vec<Uuid> {
        self.answers.iter().filter_map(|a| a.answer_id).collect()
    }

    /// The step the bot waits on, if any.
    pub fn awaited(&self) -> Option<&Step> {
        self.at.filter(|_| self.awaiting && self.ended.is_none()).map(|i| &self.script.steps[i])
    }

    /// Still running: not ended.
    pub fn running(&self) -> bool {
        self.ended.is_none()
    }
}

/// The conversation's current rating.
#[derive(Clone, Debug, PartialEq)]
pub struct Rated {
    pub message_id: Uuid,
    pub value: u8,
    pub feedback: Option<String>,
    pub operator_id: Uuid,
    pub channel_id: Uuid,
}

/// A message as the conversation holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub message_id: Uuid,
    pub author: Party,
    pub text: String,
    pub edited: bool,
    pub deleted: bool,
    pub welcome: bool,
}

/// A conversation as rebuilt from its stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    pub id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub started_channel_id: Option<Uuid>,
    pub status: SessionStatus,
    pub operator: Option<Uuid>,
    /// Every operator who handled it, in order.
    pub handlers: Vec<Uuid>,
    pub messages: Vec<Message>,
    pub visitor_name: String,
    /// The name each operator had when assigned (what the visitor saw).
    pub operator_names: std::collections::BTreeMap<Uuid, String>,
    pub visitor_token_sha256: String,
    pub seen_by_operator: Option<Uuid>,
    pub seen_by_visitor: Option<Uuid>,
    pub pages: Vec<String>,
    /// What routing knows of the visitor.
    pub languages: Vec<String>,
    pub country: Option<Country>,
    /// The latest rating, if the visitor rated it.
    pub rating: Option<Rated>,
    /// The chatbot's run, if a chatbot took the conversation.
    pub bot: Option<BotRun>,
}

impl Session {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Whether the visitor has written anything (otherwise it may be abandoned).
    pub fn visitor_wrote(&self) -> bool {
        self.messages.iter().any(|m| m.author == Party::Visitor)
    }

    fn position(&self, message_id: Uuid) -> Option<usize> {
        self.messages.iter().position(|m| m.message_id == message_id)
    }

    fn said(&mut self, message_id: Uuid, author: Party, text: String) {
        self.messages.push(Message { message_id, author, text, edited: false, deleted: false, welcome: false });
    }
}

impl Aggregate for Session {
    type Event = SessionEvent;
    const CATEGORY: &'static str = "session";

    fn apply(&mut self, e: &SessionEvent) {
        match e {
            SessionEvent::SessionStarted {
                session_id,
                channel_id,
                visitor_name,
                visitor_token_sha256,
                page_url,
                languages,
                country,
                ..
            } => {
                *self = Session {
                    id: Some(*session_id),
                    channel_id: Some(*channel_id),
                    started_channel_id: Some(*channel_id),
                    visitor_token_sha256: visitor_token_sha256.clone(),
                    visitor_name: visitor_name.clone(),
                    pages: vec![page_url.clone()],
                    languages: languages.clone(),
                    country: country.clone(),
                    ..Default::default()
                }
            }
            SessionEvent::SessionQueued {} => {
                self.status = SessionStatus::Waiting;
                self.operator = None;
            }
            SessionEvent::OperatorAssigned { operator_id, display_name, .. } => {
                self.operator_names.insert(*operator_id, display_name.clone());
                self.status = SessionStatus::Active;
                self.operator = Some(*operator_id);
                if !self.handlers.contains(operator_id) {
                    self.handlers.push(*operator_id);
                }
            }
            SessionEvent::MessagePosted { message_id, author, text, welcome } => self.messages.push(Message {
                message_id: *message_id,
                author: *author,
                text: text.clone(),
                edited: false,
                deleted: false,
                welcome: *welcome,
            }),
            SessionEvent::MessageEdited { message_id, text } => {
                if let Some(m) = self.messages.iter_mut().find(|m| m.message_id == *message_id) {
                    m.text = text.clone();
                    m.edited = true;
                }
            }
            SessionEvent::MessageDeleted { message_id } => {
                if let Some(m) = self.messages.iter_mut().find(|m| m.message_id == *message_id) {
                    m.deleted = true;
                }
            }
            SessionEvent::MessagesSeen { by, up_to } => match by {
                Party::Visitor => self.seen_by_visitor = Some(*up_to),
                _ => self.seen_by_operator = Some(*up_to),
            },
            SessionEvent::PageVisited { url } => self.pages.push(url.clone()),
            SessionEvent::SessionTransferred { to_channel, .. } => {
                self.channel_id = Some(*to_channel);
                self.operator = None;
                self.status = SessionStatus::Waiting;
            }
            SessionEvent::SessionClosed { .. } => self.status = SessionStatus::Closed,
            SessionEvent::ConversationRated { message_id, value, feedback, operator_id, channel_id } => {
                self.messages.push(Message {
                    message_id: *message_id,
                    author: Party::System,
                    text: rating_message(*value, feedback.as_deref()),
                    edited: false,
                    deleted: false,
                    welcome: false,
                });
                self.rating = Some(Rated {
                    message_id: *message_id,
                    value: *value,
                    feedback: feedback.clone(),
                    operator_id: *operator_id,
                    channel_id: *channel_id,
                });
            }
            // Bot messages are held as system messages here; histories show the bot's name.
            SessionEvent::ChatbotStarted { script } => {
                self.status = SessionStatus::Bot;
                self.bot = Some(BotRun { script: script.clone(), ..Default::default() });
            }
            SessionEvent::ChatbotStepPosted { message_id, step_id, text } => {
                self.said(*message_id, Party::System, text.clone());
                if let Some(run) = &mut self.bot {
                    run.at = run.script.steps.iter().position(|s| s.step_id == *step_id);
                    run.awaiting = run.at.is_some_and(|i| run.script.steps[i].step_type.expects_answer());
                    run.forwarding = false;
                }
            }
            SessionEvent::ChatbotForwarding { step_id } => {
                if let Some(run) = &mut self.bot {
                    run.at = run.script.steps.iter().position(|s| s.step_id == *step_id);
                    run.awaiting = false;
                    run.forwarding = true;
                }
            }
            SessionEvent::ChatbotAnswered { message_id, step_id, answer_id, text, accepted } => {
                self.said(*message_id, Party::Visitor, text.clone());
                if let (Some(run), true) = (&mut self.bot, *accepted) {
                    if let Some(step) = run.script.steps.iter().find(|s| s.step_id == *step_id) {
                        run.answers.push(Collected {
                            step_id: *step_id,
                            step_type: step.step_type,
                            question: step.message.clone(),
                            answer_id: *answer_id,
                            answer: text.clone(),
                        });
                    }
                    run.awaiting = false;
                }
            }
            SessionEvent::ChatbotSaid { message_id, text } => self.said(*message_id, Party::System, text.clone()),
            SessionEvent::ChatbotRestarted { message_id } => {
                self.said(*message_id, Party::System, bot_runtime::RESTARTING.into());
                self.status = SessionStatus::Bot;
                if let Some(run) = &mut self.bot {
                    *run = BotRun { script: run.script.clone(), ..Default::default() };
                }
            }
            SessionEvent::ChatbotEnded { outcome } => {
                if let Some(run) = &mut self.bot {
                    run.ended = Some(outcome.clone());
                    run.awaiting = false;
                    run.forwarding = false;
                }
            }
        }
    }
}

impl crate::audit::Audited for Session {
    /// What a conversation's history shows: where it stands, its operator, the visitor and
    /// the page they are on, the messages (with edits and deletions), what each side has
    /// seen, the rating and the chatbot's run. The visitor's token is left out.
    fn audit_view(&self) -> serde_json::Value {
        use serde_json::json;
        if self.id.is_none() {
            return serde_json::Value::Null;
        }
        let messages: Vec<_> = self
            .messages
            .iter()
            .map(|m| {
                json!({"id": m.message_id, "author": m.author, "text": m.text,
                       "edited": m.edited, "deleted": m.deleted, "welcome": m.welcome})
            })
            .collect();
        let operator = self.operator.map(|id| json!({"id": id, "name": self.operator_names.get(&id)}));
        let rating = self.rating.as_ref().map(|r| {
            json!({"value": r.value, "feedback": r.feedback, "operator_id": r.operator_id, "channel_id": r.channel_id})
        });
        let bot = self.bot.as_ref().map(|b| {
            let answers: Vec<_> = b
                .answers
                .iter()
                .map(|a| json!({"id": a.step_id, "question": a.question, "answer_id": a.answer_id, "answer": a.answer}))
                .collect();
            json!({
                "chatbot_id": b.script.chatbot_id,
                "version": b.script.version,
                "title": b.script.title,
                "step": b.at.and_then(|i| b.script.steps.get(i)).map(|s| s.step_id),
                "awaiting": b.awaiting,
                "forwarding": b.forwarding,
                "answers": answers,
                "ended": b.ended,
            })
        });
        json!({
            "channel_id": self.channel_id,
            "status": self.status,
            "operator": operator,
            "visitor_name": self.visitor_name,
            "page": self.pages.last(),
            "languages": self.languages,
            "country": self.country,
            "messages": messages,
            "seen_by_operator": self.seen_by_operator,
            "seen_by_visitor": self.seen_by_visitor,
            "rating": rating,
            "bot": bot,
        })
    }
}

/// Why a conversation command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    /// 404
    #[error("no such conversation")]
    NotFound,
    /// 409
    #[error("this conversation already exists")]
    AlreadyExists,
    /// 409
    #[error("the conversation is closed")]
    Closed,
    /// 403
    #[error("this conversation is not yours")]
    NotYours,
    /// 409
    #[error("the conversation already has an operator")]
    AlreadyTaken,
    /// 404
    #[error("no such message in this conversation")]
    MessageNotFound,
    /// 403
    #[error("only its author can change a message")]
    NotAuthor,
    /// 409
    #[error("this message id is already used for another message")]
    MessageIdReused,
    /// 422
    #[error("{0}")]
    Invalid(#[from] Invalid),
}

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

/// A page URL the visitor reports: relative or absolute, at most 2,000 characters.
pub fn page_url(url: &str) -> Result<String, Invalid> {
    let url = url.trim();
    if url.chars().count() > MAX_URL_CHARS {
        return Err(Invalid::new("url", format!("is longer than {MAX_URL_CHARS} characters")));
    }
    if url.chars().any(char::is_control) {
        return Err(Invalid::new("url", "contains control characters"));
    }
    Ok(if url.is_empty() { "/".to_string() } else { url.to_string() })
}

/// The visitor's name: absent or blank is anonymous ("Visitor #N"); else one line of at
/// most 100 characters.
pub fn visitor_name(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => crate::values::text("name", n, MAX_VISITOR_NAME_CHARS).map(Some),
        None => Ok(None),
    }
}

/// What a visitor gives to start a conversation, each part validated. Parsed whole before
/// anything is routed or claimed, so that a refused start writes nothing anywhere.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitorInput {
    pub name: Option<String>,
    pub page_url: String,
    /// Normalised language codes, best first (see `values::language`).
    pub languages: Vec<String>,
}

impl VisitorInput {
    /// Every invalid part, one entry each (`name`, `url`, `languages` or `languages[i]`).
    pub fn parse(name: Option<&str>, url: Option<&str>, languages: &[String]) -> Result<VisitorInput, Vec<Invalid>> {
        let mut errors = Vec::new();
        let name = visitor_name(name).map_err(|e| errors.push(e)).ok().flatten();
        let page_url = page_url(url.unwrap_or("/")).map_err(|e| errors.push(e)).unwrap_or_default();
        if languages.len() > MAX_LANGUAGES {
            errors.push(Invalid::new("languages", format!("has more than {MAX_LANGUAGES} entries")));
        }
        let languages: Vec<String> = languages
            .iter()
            .take(MAX_LANGUAGES)
            .enumerate()
            .filter_map(|(i, l)| {
                crate::values::language(&format!("languages[{i}]"), l).map_err(|e| errors.push(e)).ok()
            })
            .collect();
        match errors.is_empty() {
            true => Ok(VisitorInput { name, page_url, languages }),
            false => Err(errors),
        }
    }
}

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

fn open(state: &Session) -> Result<(), SessionError> {
    match (state.exists(), state.status) {
        (false, _) => Err(SessionError::NotFound),
        (true, SessionStatus::Closed) => Err(SessionError::Closed),
        _ => Ok(()),
    }
}

/// Whether `party` takes part: the visitor, the system, or the operator handling it.
fn takes_part(state: &Session, party: Party) -> bool {
    match party {
        Party::Operator { id } => state.operator == Some(id),
        Party::Visitor | Party::System => true,
    }
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

// ---------------------------------------------------------------------------------------------
// Chatbot runs

/// Why a chatbot command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BotError {
    #[error(transparent)]
    Session(#[from] SessionError),
    /// 409
    #[error("no chatbot is running in this conversation")]
    NotRunning,
    /// 409
    #[error("the bot is not waiting for an answer to this step")]
    NotAwaited,
}

impl From<Invalid> for BotError {
    fn from(i: Invalid) -> Self {
        BotError::Session(SessionError::Invalid(i))
    }
}

/// Message ids the bot's events take, derived from the id of what caused them so that a
/// decision made again (after a conflict) names the same messages.
fn derived(seed: Uuid, n: usize) -> Uuid {
    Uuid::new_v5(&seed, format!("bot/{n}").as_bytes())
}

/// A system message summing up what the bot collected, for the operator.
pub fn collected_summary(run: &BotRun) -> Option<String> {
    if run.answers.is_empty() {
        return None;
    }
    let lines: Vec<String> = run
        .answers
        .iter()
        .map(|a| {
            let label = match a.step_type {
                StepType::QuestionEmail => "Email".to_string(),
                StepType::QuestionPhone => "Phone".to_string(),
                _ => a.question.chars().take(80).collect(),
            };
            format!("{label}: {}", a.answer)
        })
        .collect();
    Some(format!("Collected by {}:\n{}", run.script.author_name, lines.join("\n")))
}

/// What the bot says from `after` with the answers chosen so far: its text steps up to a
/// question, a forward (routing then decides) or the end, where a conversation without an
/// operator goes to the queue with what the bot collected.
fn proceed(run: &BotRun, after: Option<usize>, chosen: &[Uuid], seed: Uuid) -> Vec<SessionEvent> {
    let plan = bot_runtime::plan(&run.script, after, chosen);
    let mut n = 0;
    let mut next_id = || {
        n += 1;
        derived(seed, n)
    };
    let mut events: Vec<SessionEvent> = plan
        .say
        .iter()
        .map(|&i| {
            let step = &run.script.steps[i];
            SessionEvent::ChatbotStepPosted { message_id: next_id(), step_id: step.step_id, text: step.message.clone() }
        })
        .collect();
    match plan.stop {
        Stop::Await(_) => {}
        Stop::Forward(i) => events.push(SessionEvent::ChatbotForwarding { step_id: run.script.steps[i].step_id }),
        Stop::End => {
            events.push(SessionEvent::ChatbotEnded { outcome: BotOutcome::Finished });
            if let Some(text) = collected_summary(run) {
                events.push(SessionEvent::MessagePosted {
                    message_id: next_id(),
                    author: Party::System,
                    text,
                    welcome: false,
                });
            }
            events.push(SessionEvent::SessionQueued {});
        }
    }
    events
}

/// Starts a conversation that a chatbot answers (no routing, no welcome message): the bot
/// says its welcome steps at once.
pub fn start_with_bot(state: &Session, s: Start, script: Script) -> Result<Vec<SessionEvent>, SessionError> {
    let seed = s.welcome_message_id;
    let mut events = start(state, Start { operator: None, welcome_text: String::new(), ..s })?;
    // `start` queues a conversation nobody answers; the bot answers this one.
    events.retain(|e| !matches!(e, SessionEvent::SessionQueued {}));
    events.push(SessionEvent::ChatbotStarted { script: script.clone() });
    let run = BotRun { script, ..Default::default() };
    events.extend(proceed(&run, None, &[], seed));
    Ok(events)
}

fn running(state: &Session) -> Result<&BotRun, BotError> {
    open(state)?;
    match &state.bot {
        Some(run) if run.running() && state.operator.is_none() => Ok(run),
        _ => Err(BotError::NotRunning),
    }
}

/// The visitor answers `step_id`: a choice (`answer_id`) or text. Answering a step already
/// answered (a double click, a retry with the same message id) changes nothing; an invalid
/// email is said back and asked again; a redirect answer ends the script.
pub fn bot_answer(
    state: &Session,
    step_id: Uuid,
    message_id: Uuid,
    answer_id: Option<Uuid>,
    text: Option<&str>,
) -> Result<Vec<SessionEvent>, BotError> {
    if let Some(m) = state.position(message_id).map(|i| &state.messages[i]) {
        return if m.author == Party::Visitor { Ok(vec![]) } else { Err(SessionError::MessageIdReused.into()) };
    }
    if state.bot.as_ref().is_some_and(|run| run.answers.iter().any(|a| a.step_id == step_id)) {
        return Ok(vec![]);
    }
    let run = running(state)?;
    let step = match run.awaited() {
        Some(s) if s.step_id == step_id => s,
        _ => return Err(BotError::NotAwaited),
    };
    let reply = bot_runtime::check_answer(step, answer_id, text)?;
    let answered = |answer_id, text: String, accepted| SessionEvent::ChatbotAnswered {
        message_id,
        step_id,
        answer_id,
        text,
        accepted,
    };
    Ok(match reply {
        Reply::Retry { raw, message } => {
            vec![
                answered(None, raw, false),
                SessionEvent::ChatbotSaid { message_id: derived(message_id, 1), text: message },
            ]
        }
        Reply::Chosen { answer_id, label, redirect_link: Some(link) } => {
            vec![
                answered(Some(answer_id), label, true),
                SessionEvent::ChatbotEnded { outcome: BotOutcome::Redirected { link } },
            ]
        }
        Reply::Chosen { answer_id: chosen, label, redirect_link: None } => {
            then_proceed(state, answered(Some(chosen), label, true), message_id)?
        }
        Reply::Text(t) => then_proceed(state, answered(None, t, true), message_id)?,
    })
}

/// An accepted answer, then what the bot says next with it counted.
fn then_proceed(state: &Session, answer: SessionEvent, seed: Uuid) -> Result<Vec<SessionEvent>, BotError> {
    let mut after = state.clone();
    after.apply(&answer);
    let run = after.bot.as_ref().ok_or(BotError::NotRunning)?;
    let mut events = vec![answer.clone()];
    events.extend(proceed(run, run.at, &run.chosen(), seed));
    Ok(events)
}

/// Settles a forward: with an operator (id, the name visitors see) they join ("NAME has
/// joined") with what the bot collected and the bot stops; without one the script goes on
/// silently. A forward already settled changes nothing.
pub fn bot_forwarded(
    state: &Session,
    step_id: Uuid,
    operator: Option<(Uuid, String)>,
    seed: Uuid,
) -> Result<Vec<SessionEvent>, BotError> {
    let run = running(state)?;
    let step = match run.at.map(|i| &run.script.steps[i]) {
        Some(s) if run.forwarding && s.step_id == step_id => s,
        _ => return Ok(vec![]),
    };
    let Some((operator_id, display_name)) = operator else {
        return Ok(proceed(run, run.at, &run.chosen(), seed));
    };
    let mut events = vec![];
    if !step.message.is_empty() {
        events.push(SessionEvent::ChatbotStepPosted {
            message_id: derived(seed, 1),
            step_id,
            text: step.message.clone(),
        });
    }
    events.push(SessionEvent::OperatorAssigned {
        operator_id,
        display_name: display_name.clone(),
        how: Assignment::Routed,
    });
    let system = |n, text| SessionEvent::MessagePosted {
        message_id: derived(seed, n),
        author: Party::System,
        text,
        welcome: false,
    };
    events.push(system(2, bot_runtime::joined(&display_name)));
    if let Some(summary) = collected_summary(run) {
        events.push(system(3, summary));
    }
    events.push(SessionEvent::ChatbotEnded { outcome: BotOutcome::Forwarded { operator_id } });
    Ok(events)
}

/// The visitor restarts the script ("Restarting conversation..."): earlier answers stay in
/// the log but no longer count. Possible until an operator has the conversation.
pub fn bot_restart(state: &Session, message_id: Uuid) -> Result<Vec<SessionEvent>, BotError> {
    if let Some(m) = state.position(message_id).map(|i| &state.messages[i]) {
        let same = m.author == Party::System && m.text == bot_runtime::RESTARTING;
        return if same { Ok(vec![]) } else { Err(SessionError::MessageIdReused.into()) };
    }
    open(state)?;
    let run = match &state.bot {
        Some(run) if state.operator.is_none() => run,
        _ => return Err(BotError::NotRunning),
    };
    let mut events = vec![SessionEvent::ChatbotRestarted { message_id }];
    let fresh = BotRun { script: run.script.clone(), ..Default::default() };
    events.extend(proceed(&fresh, None, &[], message_id));
    Ok(events)
}

/// An administrator's dry run of a chatbot: a conversation's events in a stream category of
/// its own (`bottest-<uuid>`), which no projection, report or count reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BotTest(pub Session);

impl Aggregate for BotTest {
    type Event = SessionEvent;
    const CATEGORY: &'static str = "bottest";

    fn apply(&mut self, e: &SessionEvent) {
        self.0.apply(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{decode, encode};

    const ADA: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const CHANNEL: Uuid = Uuid::from_u128(10);
    const ADA_: Party = Party::Operator { id: ADA };
    const BOB_: Party = Party::Operator { id: BOB };

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(1000 + n)
    }

    fn begin(operator: Option<Uuid>, name: Option<&str>) -> Vec<SessionEvent> {
        start(
            &Session::default(),
            Start {
                session_id: Uuid::from_u128(99),
                channel_id: CHANNEL,
                visitor_name: name.map(String::from),
                visitor_number: 7,
                page_url: "/shop".into(),
                country: None,
                languages: vec!["fr".into()],
                visitor_token_sha256: "digest".into(),
                operator: operator.map(|o| (o, "Ada from Support".into())),
                welcome_message_id: id(0),
                welcome_text: "Hello, how may I help you?".into(),
            },
        )
        .unwrap()
    }

    fn given(h: &[SessionEvent]) -> Session {
        Session::from_history(h)
    }

    fn then(h: &[SessionEvent], more: Vec<SessionEvent>) -> Vec<SessionEvent> {
        let mut h = h.to_vec();
        h.extend(more);
        h
    }

    #[test]
    fn a_routed_conversation_opens_with_the_welcome_message_from_its_operator() {
        let h = begin(Some(ADA), None);
        assert!(
            matches!(&h[0], SessionEvent::SessionStarted { visitor_name, anonymous: true, .. } if visitor_name == "Visitor #7")
        );
        assert_eq!(
            h[1],
            SessionEvent::OperatorAssigned {
                operator_id: ADA,
                display_name: "Ada from Support".into(),
                how: Assignment::Routed
            }
        );
        assert_eq!(
            h[2],
            SessionEvent::MessagePosted {
                message_id: id(0),
                author: ADA_,
                text: "Hello, how may I help you?".into(),
                welcome: true
            }
        );
        let s = given(&h);
        assert_eq!((s.status, s.operator, s.handlers.clone()), (SessionStatus::Active, Some(ADA), vec![ADA]));
    }

    #[test]
    fn a_start_input_is_parsed_whole_with_every_bad_field_named() {
        // Given a visitor's name, page and languages
        let ok = VisitorInput::parse(Some("  Marie "), None, &["FR-be".into(), "en".into()]).unwrap();
        // Then they are normalised; no name is anonymous and no URL is the home page
        assert_eq!(
            ok,
            VisitorInput {
                name: Some("Marie".into()),
                page_url: "/".into(),
                languages: vec!["fr_BE".into(), "en".into()]
            }
        );
        assert_eq!(VisitorInput::parse(Some("  "), Some(""), &[]).unwrap().name, None);
        // When every part is wrong, then every part is named
        let long_url = format!("/{}", "a".repeat(MAX_URL_CHARS));
        let bad = VisitorInput::parse(Some("Ma\0rie"), Some(&long_url), &["english".into()]).unwrap_err();
        let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "url", "languages[0]"]);
        let too_long = VisitorInput::parse(Some(&"x".repeat(MAX_VISITOR_NAME_CHARS + 1)), None, &[]).unwrap_err();
        assert_eq!(too_long[0].field, "name");
        let many = vec!["en".to_string(); MAX_LANGUAGES + 1];
        assert_eq!(VisitorInput::parse(None, None, &many).unwrap_err()[0].field, "languages");
    }

    #[test]
    fn with_nobody_available_it_waits_and_the_visitor_can_still_write() {
        let h = begin(None, Some("Marie"));
        assert_eq!(h.last(), Some(&SessionEvent::SessionQueued {}));
        let h = then(&h, post(&given(&h), Party::Visitor, id(1), "Anyone there?").unwrap());
        assert_eq!(post(&given(&h), ADA_, id(2), "Hi"), Err(SessionError::NotYours), "not taken yet");
        let h = then(&h, take(&given(&h), ADA, "Ada", Assignment::Taken).unwrap());
        assert_eq!(
            take(&given(&h), BOB, "Bob", Assignment::Taken),
            Err(SessionError::AlreadyTaken),
            "exactly one takes it"
        );
        assert!(post(&given(&h), ADA_, id(2), "Hi Marie").is_ok());
    }

    #[test]
    fn a_retried_post_is_one_message_and_a_reused_id_is_refused() {
        let h = begin(Some(ADA), None);
        let h = then(&h, post(&given(&h), Party::Visitor, id(1), "Hello").unwrap());
        assert_eq!(post(&given(&h), Party::Visitor, id(1), "Hello"), Ok(vec![]));
        assert_eq!(post(&given(&h), Party::Visitor, id(1), "Other"), Err(SessionError::MessageIdReused));
        assert_eq!(post(&given(&h), BOB_, id(3), "Hi"), Err(SessionError::NotYours));
    }

    #[test]
    fn messages_are_validated_but_kept_verbatim() {
        let h = begin(Some(ADA), None);
        let s = given(&h);
        assert!(matches!(post(&s, Party::Visitor, id(1), "   "), Err(SessionError::Invalid(_))));
        assert!(matches!(post(&s, Party::Visitor, id(1), &"x".repeat(4001)), Err(SessionError::Invalid(_))));
        let html = "<b>bold</b> & \"quotes\"\n";
        let posted = post(&s, Party::Visitor, id(1), html).unwrap();
        assert!(matches!(&posted[0], SessionEvent::MessagePosted { text, .. } if text == html));
        assert!(post(&s, Party::Visitor, id(2), &"é".repeat(4000)).is_ok(), "characters, not bytes");
    }

    #[test]
    fn operators_edit_and_delete_only_their_own_messages() {
        let h = begin(Some(ADA), None);
        let h = then(&h, post(&given(&h), Party::Visitor, id(1), "Hi").unwrap());
        let h = then(&h, post(&given(&h), ADA_, id(2), "Helo").unwrap());
        assert_eq!(edit(&given(&h), ADA_, id(1), "x"), Err(SessionError::NotAuthor));
        let h = then(&h, edit(&given(&h), ADA_, id(2), "Hello").unwrap());
        let m = &given(&h).messages[2];
        assert_eq!((m.text.as_str(), m.edited), ("Hello", true));
        let h = then(&h, delete(&given(&h), ADA_, id(2)).unwrap());
        assert_eq!(delete(&given(&h), ADA_, id(2)), Err(SessionError::MessageNotFound));
        assert_eq!(edit(&given(&h), ADA_, id(9), "x"), Err(SessionError::MessageNotFound));
    }

    #[test]
    fn seen_marks_only_move_forward() {
        let h = begin(Some(ADA), None);
        let h = then(&h, post(&given(&h), Party::Visitor, id(1), "a").unwrap());
        let h = then(&h, post(&given(&h), Party::Visitor, id(2), "b").unwrap());
        let h = then(&h, seen(&given(&h), ADA_, id(2)).unwrap());
        assert_eq!(seen(&given(&h), ADA_, id(1)), Ok(vec![]));
        assert_eq!(given(&h).seen_by_operator, Some(id(2)));
        assert_eq!(seen(&given(&h), BOB_, id(2)), Err(SessionError::NotYours));
        assert_eq!(seen(&given(&h), Party::Visitor, id(5)), Err(SessionError::MessageNotFound));
    }

    #[test]
    fn a_transfer_keeps_who_handled_it_when() {
        let h = begin(Some(ADA), None);
        let h = then(&h, transfer(&given(&h), ADA_, false, CHANNEL, Some((BOB, "Bob".into()))).unwrap());
        let s = given(&h);
        assert_eq!((s.operator, s.handlers.clone()), (Some(BOB), vec![ADA, BOB]));
        assert_eq!(transfer(&s, ADA_, false, CHANNEL, None), Err(SessionError::NotYours), "Ada no longer has it");
        let to_queue = transfer(&s, BOB_, false, Uuid::from_u128(11), None).unwrap();
        let s = given(&then(&h, to_queue));
        assert_eq!((s.status, s.channel_id), (SessionStatus::Waiting, Some(Uuid::from_u128(11))));
    }

    #[test]
    fn the_visitor_leaving_closes_it_with_a_system_message_and_nothing_more_is_posted() {
        let h = begin(Some(ADA), None);
        let closing = close(&given(&h), Party::Visitor, false, id(5)).unwrap();
        assert_eq!(
            closing,
            vec![
                SessionEvent::MessagePosted {
                    message_id: id(5),
                    author: Party::System,
                    text: VISITOR_LEFT.into(),
                    welcome: false
                },
                SessionEvent::SessionClosed {
                    by: Party::Visitor,
                    reason: CloseReason::VisitorLeft,
                    started_channel_id: Some(CHANNEL)
                }
            ]
        );
        let h = then(&h, closing);
        assert_eq!(post(&given(&h), Party::Visitor, id(6), "wait"), Err(SessionError::Closed));
        assert_eq!(post(&given(&h), ADA_, id(6), "bye"), Err(SessionError::Closed));
        assert_eq!(close(&given(&h), ADA_, false, id(7)), Ok(vec![]));
        assert_eq!(close(&given(&begin(Some(ADA), None)), BOB_, false, id(7)), Err(SessionError::NotYours));
        assert!(close(&given(&begin(Some(ADA), None)), BOB_, true, id(7)).is_ok(), "admins may close any");
    }

    #[test]
    fn only_conversations_the_visitor_never_wrote_in_are_abandoned() {
        let h = begin(Some(ADA), None);
        assert_eq!(
            abandon(&given(&h)).unwrap(),
            vec![SessionEvent::SessionClosed {
                by: Party::System,
                reason: CloseReason::Abandoned,
                started_channel_id: Some(CHANNEL)
            }]
        );
        let h = then(&h, post(&given(&h), Party::Visitor, id(1), "hi").unwrap());
        assert_eq!(abandon(&given(&h)), Ok(vec![]));
    }

    fn rated(message_id: Uuid, value: u8, feedback: Option<&str>) -> SessionEvent {
        SessionEvent::ConversationRated {
            message_id,
            value,
            feedback: feedback.map(String::from),
            operator_id: ADA,
            channel_id: CHANNEL,
        }
    }

    #[test]
    fn the_visitor_rates_a_closed_conversation_and_the_rating_shows_as_a_system_message() {
        let h = begin(Some(ADA), None);
        let h = then(&h, close(&given(&h), Party::Visitor, false, id(5)).unwrap());
        let rating = rate(&given(&h), Party::Visitor, 1, Some("Too slow.\nNo answer."), id(6)).unwrap();
        assert_eq!(rating, vec![rated(id(6), 1, Some("Too slow.\nNo answer."))]);
        let s = given(&then(&h, rating));
        let m = s.messages.last().unwrap();
        assert_eq!(
            (m.message_id, m.author, m.text.as_str()),
            (id(6), Party::System, "Rating: Unhappy\nToo slow.\nNo answer.")
        );
        assert_eq!(s.rating.map(|r| (r.value, r.operator_id)), Some((1, ADA)));
    }

    #[test]
    fn an_open_conversation_can_be_rated_without_feedback() {
        let h = begin(Some(ADA), None);
        assert_eq!(rate(&given(&h), Party::Visitor, 5, None, id(1)), Ok(vec![rated(id(1), 5, None)]));
        assert_eq!(
            rate(&given(&h), Party::Visitor, 3, Some("  \n "), id(1)),
            Ok(vec![rated(id(1), 3, None)]),
            "blank feedback is none"
        );
        assert_eq!(rating_message(3, None), "Rating: Neutral");
    }

    #[test]
    fn a_later_rating_replaces_the_earlier_one_and_keeps_who_was_rated() {
        let h = begin(Some(ADA), None);
        let h = then(&h, rate(&given(&h), Party::Visitor, 1, Some("bad"), id(1)).unwrap());
        // Handed to Bob afterwards: the rating still rates Ada in the first channel.
        let h = then(&h, transfer(&given(&h), ADA_, false, Uuid::from_u128(11), Some((BOB, "Bob".into()))).unwrap());
        let again = rate(&given(&h), Party::Visitor, 5, Some("sorted out"), id(2)).unwrap();
        assert_eq!(again, vec![rated(id(2), 5, Some("sorted out"))]);
        let s = given(&then(&h, again));
        assert_eq!(s.rating.as_ref().map(|r| (r.value, r.message_id)), Some((5, id(2))));
        let texts: Vec<&str> =
            s.messages.iter().filter(|m| m.author == Party::System).map(|m| m.text.as_str()).collect();
        assert_eq!(texts, vec!["Rating: Unhappy\nbad", "Rating: Happy\nsorted out"], "both stay in the history");
    }

    #[test]
    fn a_conversation_moved_to_another_channel_is_rated_in_the_channel_it_started_in() {
        // Given: started in CHANNEL with Ada, handed to Bob in another channel.
        let h = begin(Some(ADA), None);
        let h = then(&h, transfer(&given(&h), ADA_, false, Uuid::from_u128(11), Some((BOB, "Bob".into()))).unwrap());
        // When the visitor rates, then the rating names Bob and the channel it started in.
        let rating = rate(&given(&h), Party::Visitor, 5, None, id(1)).unwrap();
        let [SessionEvent::ConversationRated { operator_id, channel_id, .. }] = rating.as_slice() else {
            panic!("{rating:?}")
        };
        assert_eq!((*operator_id, *channel_id), (BOB, CHANNEL));
    }

    #[test]
    fn a_retried_rating_is_one_rating_and_a_reused_message_id_is_refused() {
        let h = begin(Some(ADA), None);
        let h = then(&h, rate(&given(&h), Party::Visitor, 3, Some("ok"), id(1)).unwrap());
        assert_eq!(rate(&given(&h), Party::Visitor, 3, Some("ok"), id(1)), Ok(vec![]));
        assert_eq!(rate(&given(&h), Party::Visitor, 5, Some("ok"), id(1)), Err(SessionError::MessageIdReused));
        assert_eq!(
            rate(&given(&h), Party::Visitor, 5, None, id(0)),
            Err(SessionError::MessageIdReused),
            "the welcome message's id"
        );
    }

    #[test]
    fn only_the_visitor_rates_and_only_a_conversation_that_exists() {
        let h = begin(Some(ADA), None);
        assert_eq!(rate(&given(&h), ADA_, 5, None, id(1)), Err(SessionError::NotYours), "its operator");
        assert_eq!(rate(&given(&h), BOB_, 5, None, id(1)), Err(SessionError::NotYours));
        assert_eq!(rate(&given(&h), Party::System, 5, None, id(1)), Err(SessionError::NotYours));
        assert_eq!(rate(&Session::default(), Party::Visitor, 5, None, id(1)), Err(SessionError::NotFound));
    }

    #[test]
    fn a_rating_is_5_3_or_1_with_at_most_4000_characters_of_feedback() {
        let s = given(&begin(Some(ADA), None));
        for bad in [0, 2, 4, 6, -1, 256 + 5] {
            let refused = rate(&s, Party::Visitor, bad, None, id(1));
            assert!(matches!(&refused, Err(SessionError::Invalid(i)) if i.field == "value"), "{bad}: {refused:?}");
        }
        let long = rate(&s, Party::Visitor, 5, Some(&"é".repeat(4001)), id(1));
        assert!(matches!(&long, Err(SessionError::Invalid(i)) if i.field == "feedback"), "{long:?}");
        assert!(rate(&s, Party::Visitor, 5, Some(&"é".repeat(4000)), id(1)).is_ok(), "characters, not bytes");
        let nul = rate(&s, Party::Visitor, 5, Some("a\0b"), id(1));
        assert!(matches!(&nul, Err(SessionError::Invalid(i)) if i.field == "feedback"), "{nul:?}");
    }

    #[test]
    fn a_conversation_nobody_answered_cannot_be_rated() {
        let s = given(&begin(None, None));
        assert!(matches!(rate(&s, Party::Visitor, 5, None, id(1)), Err(SessionError::Invalid(_))));
    }

    #[test]
    fn session_events_round_trip_through_their_stored_form() {
        let mut h = begin(Some(ADA), Some("Marie"));
        h.push(SessionEvent::MessagesSeen { by: Party::Visitor, up_to: id(0) });
        h.push(rated(id(1), 3, Some("fine")));
        h.push(rated(id(2), 5, None));
        for e in h {
            let (t, d) = encode(&e);
            assert_eq!(decode::<SessionEvent>(&t, &d).unwrap(), e, "{t}");
        }
        let (_, d) = encode(&SessionEvent::MessagesSeen { by: ADA_, up_to: id(0) });
        assert_eq!(d["by"], serde_json::json!({"kind": "operator", "id": ADA}));
    }

    // -----------------------------------------------------------------------------------------
    // Chatbot runs

    mod bot {
        use super::*;
        use crate::chatbot::{Answer, Script, Step, StepType};

        fn step(n: u128, step_type: StepType, message: &str, answers: &[(u128, Option<&str>)]) -> Step {
            Step {
                step_id: Uuid::from_u128(n),
                step_type,
                message: message.into(),
                answers: answers
                    .iter()
                    .map(|(a, link)| Answer {
                        answer_id: Uuid::from_u128(*a),
                        label: format!("answer {a}"),
                        redirect_link: link.map(String::from),
                    })
                    .collect(),
                only_if: vec![],
            }
        }

        const HELLO: u128 = 200;
        const TOPIC: u128 = 201;
        const EMAIL: u128 = 202;
        const FORWARD: u128 = 203;
        const BYE: u128 = 204;
        const SALES: u128 = 21;
        const DOCS: u128 = 22;

        fn script() -> Script {
            use StepType::*;
            Script {
                chatbot_id: Uuid::from_u128(7),
                version: 3,
                title: "Support bot".into(),
                author_name: "Robin".into(),
                steps: vec![
                    step(HELLO, Text, "Hello!", &[]),
                    step(
                        TOPIC,
                        QuestionSelection,
                        "What about?",
                        &[(SALES, None), (DOCS, Some("https://example.com/docs"))],
                    ),
                    step(EMAIL, QuestionEmail, "Your email?", &[]),
                    step(FORWARD, ForwardOperator, "Let me find someone.", &[]),
                    step(BYE, Text, "We will write to you.", &[]),
                ],
            }
        }

        fn started() -> Vec<SessionEvent> {
            started_with(script())
        }

        fn started_with(script: Script) -> Vec<SessionEvent> {
            let s = Start {
                session_id: Uuid::from_u128(99),
                channel_id: CHANNEL,
                visitor_name: None,
                visitor_number: 7,
                page_url: "/".into(),
                country: None,
                languages: vec![],
                visitor_token_sha256: "digest".into(),
                operator: None,
                welcome_message_id: id(0),
                welcome_text: "ignored".into(),
            };
            start_with_bot(&Session::default(), s, script).unwrap()
        }

        fn texts(events: &[SessionEvent]) -> Vec<String> {
            events
                .iter()
                .filter_map(|e| match e {
                    SessionEvent::ChatbotStepPosted { text, .. } | SessionEvent::ChatbotSaid { text, .. } => {
                        Some(format!("bot: {text}"))
                    }
                    SessionEvent::ChatbotAnswered { text, .. } => Some(format!("visitor: {text}")),
                    SessionEvent::MessagePosted { text, .. } => Some(format!("system: {text}")),
                    SessionEvent::ChatbotForwarding { .. } => Some("(forwarding)".into()),
                    SessionEvent::ChatbotEnded { outcome } => Some(format!("(ended: {outcome:?})")),
                    SessionEvent::SessionQueued {} => Some("(queued)".into()),
                    SessionEvent::OperatorAssigned { display_name, .. } => Some(format!("(assigned {display_name})")),
                    SessionEvent::ChatbotRestarted { .. } => Some("bot: Restarting conversation...".into()),
                    _ => None,
                })
                .collect()
        }

        fn answer(
            h: &[SessionEvent],
            step: u128,
            m: u128,
            choice: Option<u128>,
            text: Option<&str>,
        ) -> Vec<SessionEvent> {
            bot_answer(&given(h), Uuid::from_u128(step), id(m), choice.map(Uuid::from_u128), text).unwrap()
        }

        /// Greeted, chose sales, gave an email: the bot stands at the forward.
        fn at_forward() -> Vec<SessionEvent> {
            let h = started();
            let h = then(&h, answer(&h, TOPIC, 1, Some(SALES), None));
            then(&h, answer(&h, EMAIL, 2, None, Some("marie@example.com")))
        }

        #[test]
        fn the_bot_says_its_welcome_steps_and_waits_for_the_first_question() {
            let h = started();
            assert!(matches!(&h[1], SessionEvent::ChatbotStarted { script } if script.version == 3));
            assert_eq!(texts(&h), vec!["bot: Hello!", "bot: What about?"]);
            let s = given(&h);
            assert_eq!(s.status, SessionStatus::Bot, "not queued while the bot answers");
            assert_eq!(s.bot.as_ref().unwrap().awaited().map(|s| s.step_id), Some(Uuid::from_u128(TOPIC)));
        }

        #[test]
        fn a_choice_then_an_invalid_email_retried_then_a_valid_one_reach_the_forward() {
            let h = started();
            let chose = answer(&h, TOPIC, 1, Some(SALES), None);
            assert_eq!(texts(&chose), vec!["visitor: answer 21", "bot: Your email?"]);
            let h = then(&h, chose);
            let bad = answer(&h, EMAIL, 2, None, Some("marie@"));
            assert_eq!(
                texts(&bad),
                vec!["visitor: marie@", "bot: 'marie@' does not look like a valid email. Can you please try again?"]
            );
            let h = then(&h, bad);
            let good = answer(&h, EMAIL, 3, None, Some("Marie@Example.com"));
            assert_eq!(texts(&good), vec!["visitor: Marie@example.com", "(forwarding)"]);
            let s = given(&then(&h, good));
            let run = s.bot.unwrap();
            assert!(run.forwarding);
            let collected: Vec<&str> = run.answers.iter().map(|a| a.answer.as_str()).collect();
            assert_eq!(collected, vec!["answer 21", "Marie@example.com"], "the invalid email does not count");
        }

        #[test]
        fn answering_the_same_step_twice_is_answered_once() {
            let h = started();
            let h = then(&h, answer(&h, TOPIC, 1, Some(SALES), None));
            assert_eq!(answer(&h, TOPIC, 1, Some(SALES), None), vec![], "a retry with the same message id");
            assert_eq!(answer(&h, TOPIC, 5, Some(DOCS), None), vec![], "a double click");
            let early = bot_answer(&given(&h), Uuid::from_u128(FORWARD), id(6), None, Some("x"));
            assert_eq!(early, Err(BotError::NotAwaited));
            let wrong = bot_answer(&given(&h), Uuid::from_u128(EMAIL), id(6), None, None);
            assert!(matches!(wrong, Err(BotError::Session(SessionError::Invalid(i))) if i.field == "text"));
        }

        #[test]
        fn a_forward_with_an_operator_hands_over_with_what_the_bot_collected() {
            let h = at_forward();
            let found = bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), Some((ADA, "Ada".into())), id(9)).unwrap();
            assert_eq!(
                texts(&found),
                vec![
                    "bot: Let me find someone.",
                    "(assigned Ada)",
                    "system: Ada has joined",
                    "system: Collected by Robin:\nWhat about?: answer 21\nEmail: marie@example.com",
                    "(ended: Forwarded { operator_id: 00000000-0000-0000-0000-000000000001 })",
                ]
            );
            let h = then(&h, found);
            let s = given(&h);
            assert_eq!((s.status, s.operator), (SessionStatus::Active, Some(ADA)));
            assert_eq!(bot_forwarded(&s, Uuid::from_u128(FORWARD), None, id(9)), Err(BotError::NotRunning));
            assert_eq!(bot_restart(&s, id(10)), Err(BotError::NotRunning), "the operator has it now");
        }

        #[test]
        fn without_an_operator_the_script_goes_on_silently_and_ends_in_the_queue() {
            let h = at_forward();
            let none = bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), None, id(9)).unwrap();
            assert_eq!(
                texts(&none),
                vec![
                    "bot: We will write to you.",
                    "(ended: Finished)",
                    "system: Collected by Robin:\nWhat about?: answer 21\nEmail: marie@example.com",
                    "(queued)",
                ]
            );
            let s = given(&then(&h, none));
            assert_eq!((s.status, s.operator), (SessionStatus::Waiting, None));
            assert_eq!(bot_forwarded(&s, Uuid::from_u128(FORWARD), None, id(9)), Err(BotError::NotRunning));
        }

        #[test]
        fn a_script_ending_with_an_operator_leaves_the_conversation_to_them() {
            let mut short = script();
            short.steps.truncate(2);
            short.steps.push(step(FORWARD, StepType::ForwardOperator, "", &[]));
            let h = started_with(short);
            let h = then(&h, answer(&h, TOPIC, 1, Some(SALES), None));
            assert_eq!(texts(&h).last().map(String::as_str), Some("(forwarding)"));
            let found = bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), Some((BOB, "Bob".into())), id(2)).unwrap();
            assert_eq!(texts(&found)[0], "(assigned Bob)", "a silent forward says nothing");
            assert!(!texts(&found).contains(&"(queued)".to_string()));
            let s2 = given(&then(&h, found));
            assert_eq!(s2.bot.unwrap().ended, Some(BotOutcome::Forwarded { operator_id: BOB }));
        }

        #[test]
        fn a_redirect_answer_ends_the_script() {
            let h = started();
            let redirected = answer(&h, TOPIC, 1, Some(DOCS), None);
            assert_eq!(
                redirected.last(),
                Some(&SessionEvent::ChatbotEnded {
                    outcome: BotOutcome::Redirected { link: "https://example.com/docs".into() }
                })
            );
            let s = given(&then(&h, redirected));
            assert_eq!(bot_answer(&s, Uuid::from_u128(EMAIL), id(2), None, Some("a@b.co")), Err(BotError::NotRunning));
        }

        #[test]
        fn a_restart_starts_over_and_earlier_answers_no_longer_count() {
            let h = at_forward();
            let h = then(&h, bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), None, id(9)).unwrap());
            let restarted = bot_restart(&given(&h), id(10)).unwrap();
            assert_eq!(texts(&restarted), vec!["bot: Restarting conversation...", "bot: Hello!", "bot: What about?"]);
            let h = then(&h, restarted);
            assert_eq!(bot_restart(&given(&h), id(10)), Ok(vec![]), "a retried restart");
            let s = given(&h);
            assert_eq!(s.status, SessionStatus::Bot, "out of the queue again");
            let run = s.bot.clone().unwrap();
            assert!(run.answers.is_empty() && run.running());
            assert!(s.messages.iter().any(|m| m.text == "marie@example.com"), "the log keeps the earlier answers");
            assert_eq!(texts(&answer(&h, TOPIC, 11, Some(SALES), None)).len(), 2, "the topic is asked again");
        }

        #[test]
        fn bot_events_round_trip_through_their_stored_form() {
            let mut h = at_forward();
            h.extend(bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), Some((ADA, "Ada".into())), id(9)).unwrap());
            h.push(SessionEvent::ChatbotRestarted { message_id: id(3) });
            h.push(SessionEvent::ChatbotEnded { outcome: BotOutcome::Redirected { link: "/x".into() } });
            for e in h {
                let (t, d) = encode(&e);
                assert_eq!(decode::<SessionEvent>(&t, &d).unwrap(), e, "{t}");
            }
        }
    }
}
