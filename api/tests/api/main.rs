//! The API's black-box tests: HTTP, WebSocket, PostgreSQL and the browser widget. One test
//! binary, so the workspace links once for them all (as `tests/e2e`).

mod common;

mod audit;
mod browser;
mod canned;
mod channels;
mod chatbots;
mod contention;
mod conversations;
mod http;
mod positions;
mod public;
mod ratings;
mod readiness;
mod refusals;
mod replay;
mod reports;
mod slots;
mod stream;
mod stuck;
mod transcripts;
mod users;
