//! How an aggregate's events become stored events and back: [`crate::event`] plus
//! [`decode_versioned`], which upcasts first (kept apart so that the modules defining
//! aggregates do not depend on the upcasts that read their schema versions).

use serde::de::DeserializeOwned;

pub use crate::error::DecodeError;
pub use crate::event::{decode, encode, Aggregate};

/// Rebuilds an event stored at `schema_version`, upcast to the current shape first.
pub fn decode_versioned<E: DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    data: &serde_json::Value,
) -> Result<E, DecodeError> {
    decode(event_type, crate::upcast::upcast(event_type, schema_version, data)?.as_ref())
}
