//! Why a conversation command was refused.

use crate::values::Invalid;

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
