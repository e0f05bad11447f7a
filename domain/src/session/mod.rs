//! A visitor's conversation (a session): who handles it, its messages, what each side has
//! seen, and how it ends. One stream per conversation (`session-<uuid>`).
//!
//! The aggregate and its fold are in `state`, its events in `events`; each other module is
//! one family of decisions. Everything is re-exported here: callers say `session::take`.

mod assignment;
mod bot;
mod closing;
mod errors;
mod events;
mod messages;
mod rating;
mod start;
mod state;
#[cfg(test)]
mod tests;
mod visitor_input;
mod wording;

pub use assignment::*;
pub use bot::*;
pub use closing::*;
pub use errors::*;
pub use events::*;
pub use messages::*;
pub use rating::*;
pub use start::*;
pub use state::*;
pub use visitor_input::*;
pub use wording::*;

pub use crate::limits::{MAX_MESSAGE_CHARS, MAX_URL_CHARS};
