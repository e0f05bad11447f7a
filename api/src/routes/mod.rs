//! One module per resource; each adds its routes with a `routes()` function.

pub mod audit;
pub mod auth;
pub mod canned;
pub mod channels;
pub mod chatbots;
pub mod conversations;
pub mod events;
pub mod health;
pub mod live;
pub mod public;
pub mod ratings;
pub mod reports;
pub mod sessions;
pub mod streams;
pub mod transcripts;
pub mod users;
