//! The pure model of livechat: what events mean and which decisions produce them.
//!
//! Architecture invariant: no I/O, no tokio, no SQL, no clock and no randomness. Time and
//! ids come in through commands; a decision is `(state, command) -> events | error`.

pub mod aggregate;
pub mod audit;
pub mod bot_runtime;
pub mod canned;
pub mod channel;
pub mod chat_command;
pub mod chatbot;
pub mod error;
pub mod event;
pub mod limits;
pub mod metadata;
pub mod routing;
pub mod rules;
mod schema;
pub mod session;
#[cfg(test)]
mod testing;
pub mod transcript;
pub mod upcast;
pub mod user;
pub mod values;

pub use aggregate::{Aggregate, DecodeError};
