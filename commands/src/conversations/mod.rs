//! Conversations across aggregates: reading them and their channels, the operators' slots
//! (claimed on the operator's own stream first, so that the per-operator maximum holds even
//! when several servers assign at once), routing, the queues, take and hand-over; the visitor's start, posts and
//! the chatbot's run; the operators' posts and chat commands.

mod assignment;
mod bot;
mod chat_commands;
mod close;
mod lookup;
mod messages;
mod queue;
mod routing;
mod start;
mod transfer;

use domain::session::{BotError, SessionError};
use domain::user::UserError;
use domain::values::Invalid;
use store::StoreError;

use crate::users::UserReadError;
use crate::{CommandError, StoreOrDecode};

pub use assignment::{assign, claim, claim_for, give_back, release, stale_claims, Claimed, Slot};
pub use bot::{answer as bot_answer, for_start, restart as bot_restart, runnable, settle};
pub use chat_commands::{readable, run_command, CommandAnswer, Effect, Operator};
pub use close::close;
pub use lookup::{active_channels, channel, channels_of, decide_on_session, on_session, run_on_session, session};
pub use messages::{delete, edit, leave, operator_post, seen, visit, visitor_post};
pub use queue::{abandon_idle, dispatch, dispatch_for, release_stale_claims};
pub use routing::{candidates, route};
pub use start::{start, StartInput};
pub use transfer::{hand_over, take};

/// Why a conversation use case did not go through (`api` maps each to a problem document).
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("no such conversation")]
    NotFound,
    #[error("no such channel")]
    ChannelNotFound,
    /// The operator taking a conversation holds their maximum already.
    #[error("you are at your maximum of conversations")]
    AtCapacity,
    /// The operator a conversation is handed to holds their maximum already.
    #[error("that operator is at their maximum")]
    OperatorAtCapacity,
    /// Only the channel's operators take its conversations.
    #[error("only the channel's operators take its conversations")]
    NotChannelOperator,
    /// A hand-over to someone who is not an active operator of the target channel.
    #[error("is not an active operator of the target channel")]
    NotTargetOperator,
    /// The caller is neither an operator of the conversation, an admin, nor (while it
    /// waits) an operator of its channel.
    #[error("this conversation is not yours")]
    NotYours,
    /// A visitor's start with invalid parts, one entry each.
    #[error("invalid input")]
    Invalid(Vec<Invalid>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Users(#[from] UserReadError),
    #[error(transparent)]
    Load(#[from] StoreOrDecode),
    #[error(transparent)]
    User(#[from] CommandError<UserError>),
    #[error(transparent)]
    Session(#[from] CommandError<SessionError>),
    /// A chatbot decision refused (not running, not the step it waits on, a bad answer).
    #[error(transparent)]
    Bot(#[from] CommandError<BotError>),
}

impl From<SessionError> for ConversationError {
    fn from(e: SessionError) -> Self {
        ConversationError::Session(CommandError::Domain(e))
    }
}
