//! A conversation as rebuilt from its stream (the fold), and the checks every decision on
//! it shares.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::errors::SessionError;
use super::events::{BotOutcome, Party, SessionEvent};
use super::wording::rating_message;
use crate::bot_runtime;
use crate::chatbot::{Script, Step, StepType};
use crate::event::Aggregate;
use crate::values::Country;

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

    pub(super) fn position(&self, message_id: Uuid) -> Option<usize> {
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

pub(super) fn open(state: &Session) -> Result<(), SessionError> {
    match (state.exists(), state.status) {
        (false, _) => Err(SessionError::NotFound),
        (true, SessionStatus::Closed) => Err(SessionError::Closed),
        _ => Ok(()),
    }
}

/// Whether `party` takes part: the visitor, the system, or the operator handling it.
pub(super) fn takes_part(state: &Session, party: Party) -> bool {
    match party {
        Party::Operator { id } => state.operator == Some(id),
        Party::Visitor | Party::System => true,
    }
}
