//! End-to-end: the real `livechat` binary, real stores, real HTTP. One test binary, so it
//! links once.

mod harness;

mod bootstrap;
mod cli;
mod replay;
mod server;
mod slots;
mod transfer;
mod users;
