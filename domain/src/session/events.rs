//! What happened in a conversation: the stored events and the values they carry.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chatbot::Script;
use crate::values::Country;

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

crate::schema::schema_versions!(SessionEvent {
    SessionStarted => 1,
    SessionQueued => 1,
    OperatorAssigned => 1,
    MessagePosted => 1,
    MessageEdited => 1,
    MessageDeleted => 1,
    MessagesSeen => 1,
    PageVisited => 1,
    SessionTransferred => 1,
    SessionClosed => 1,
    ConversationRated => 1,
    ChatbotStarted => 1,
    ChatbotStepPosted => 1,
    ChatbotForwarding => 1,
    ChatbotAnswered => 1,
    ChatbotSaid => 1,
    ChatbotRestarted => 1,
    ChatbotEnded => 1,
});

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
