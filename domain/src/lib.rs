//! The pure model of livechat: what events mean and which decisions produce them.
//!
//! Architecture invariant: no I/O, no tokio, no SQL, no clock and no randomness. Time and
//! ids come in through commands. So far it holds the envelope metadata every event carries;
//! channels, users and sessions arrive with their issues.

pub mod metadata;
