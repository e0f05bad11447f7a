//! The command side: the generic load/decide/append core ([`core`]) and, on top of it, the
//! use cases over an [`App`] handle (stores, clock, caches, configuration).
//!
//! Architecture invariant: the only place where decisions meet the event store. Use cases
//! hold no business rules (those are `domain`'s `decide` functions) and know nothing of HTTP:
//! they return typed errors that `api` maps to problem documents.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod canned;
pub mod channels;
pub mod chatbots;
pub mod clock;
pub mod config;
pub mod conversations;
mod core;
pub mod first_start;
pub mod mailer;
pub mod presence;
pub mod ratings;
pub mod serial;
pub mod transcripts;
pub mod users;
pub mod worker;

pub use crate::app::App;
pub use crate::config::{Config, MailerConfig};
pub use crate::core::*;
