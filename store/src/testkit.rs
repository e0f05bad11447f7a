//! Shared test support: the store conformance suite and a throw-away PostgreSQL cluster.

pub mod conformance;
pub mod pg;
