//! What an aggregate is, and how its events become stored events and back. A leaf: the
//! modules defining aggregates import it, and nothing here reads the upcasts, which read
//! those modules' schema versions.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::DecodeError;

/// A consistency boundary with its own stream (`<category>-<uuid>`).
///
/// `Event` is an enum whose variant names are the stored event types (past-tense facts) and
/// whose fields are the event's data. Renaming a variant renames stored events: use
/// `#[serde(rename = "...")]` to keep the old name.
pub trait Aggregate: Default {
    type Event: Serialize + DeserializeOwned + Clone + std::fmt::Debug + PartialEq;
    /// Stream category; never rename it (it is in every stored stream id).
    const CATEGORY: &'static str;

    fn apply(&mut self, event: &Self::Event);

    /// Folds a history into the state.
    fn from_history<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for e in events {
            state.apply(e);
        }
        state
    }
}

/// Splits an event into its stored type name and data.
pub fn encode<E: Serialize>(event: &E) -> (String, serde_json::Value) {
    let value = serde_json::to_value(event).expect("domain events always serialize");
    match value {
        serde_json::Value::Object(mut map) => {
            let event_type = map.remove("event_type").and_then(|t| t.as_str().map(String::from)).unwrap_or_default();
            let data = map.remove("data").unwrap_or(serde_json::Value::Object(Default::default()));
            (event_type, data)
        }
        _ => (String::new(), value),
    }
}

/// Rebuilds an event from its stored type name and data.
pub fn decode<E: DeserializeOwned>(event_type: &str, data: &serde_json::Value) -> Result<E, DecodeError> {
    let tagged = serde_json::json!({ "event_type": event_type, "data": data });
    serde_json::from_value(tagged)
        .map_err(|e| DecodeError { event_type: event_type.to_string(), reason: e.to_string() })
}

/// The stream of aggregate `A` with this id (`<category>-<id>`); view documents of one
/// aggregate use the same id.
pub fn stream_id<A: Aggregate>(id: impl std::fmt::Display) -> String {
    format!("{}-{id}", A::CATEGORY)
}
