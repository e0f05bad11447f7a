//! End-to-end: the real `livechat` binary, real stores, real HTTP. One test binary, so it
//! links once.

mod harness;

mod bootstrap;
mod cli;
mod replay;
mod server;
mod shutdown;
mod slots;
mod stuck_store;
mod transfer;
mod users;
