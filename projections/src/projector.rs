//! What a projector is: a pure function from an event and the documents it touches to
//! changes of those documents.

use std::collections::HashMap;

use serde_json::Value;
use store::{Doc, DocChange, RecordedEvent};

/// Why a projector could not apply an event. The runner retries, then parks the event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionError {
    /// The event's data does not have the shape this projector expects.
    #[error("cannot decode {event_type} v{schema_version}: {reason}")]
    Decode { event_type: String, schema_version: u32, reason: String },
    /// The event contradicts the view (for example it refers to a document that does not exist).
    #[error("{0}")]
    Inconsistent(String),
    /// The projector made a document no view store can hold (see [`store::views::check_doc`]),
    /// or the store refused the event's documents when they were committed.
    #[error("{0}")]
    Unstorable(String),
}

impl ProjectionError {
    /// Decodes a domain event (`event_type` + `data`) into its enum, or says why not.
    pub fn domain_event<E: serde::de::DeserializeOwned>(event: &RecordedEvent) -> Result<E, ProjectionError> {
        domain::aggregate::decode_versioned(&event.event_type, event.schema_version, &event.data).map_err(|d| {
            ProjectionError::Decode { event_type: d.event_type, schema_version: event.schema_version, reason: d.reason }
        })
    }

    /// Decodes `event.data` into `T`, or says precisely why not.
    pub fn decode<T: serde::de::DeserializeOwned>(event: &RecordedEvent) -> Result<T, ProjectionError> {
        serde_json::from_value(event.data.clone()).map_err(|e| ProjectionError::Decode {
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            reason: e.to_string(),
        })
    }
}

/// A document as a projector sees it: where it is listed and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub partition: String,
    pub sort_key: String,
    pub body: Value,
}

impl From<Doc> for Draft {
    fn from(d: Doc) -> Self {
        Draft { partition: d.partition, sort_key: d.sort_key, body: d.body }
    }
}

type Key = (&'static str, String);

/// The documents a batch works on: loaded ones, and those changed so far.
///
/// Changes made while applying one event are undone if that event fails, so a parked event
/// leaves no trace in the views. A document no store can hold is refused here, before any
/// backend sees it: the event then fails like any other (retried, then parked).
#[derive(Default)]
pub struct Docs {
    current: HashMap<Key, Option<Draft>>,
    dirty: Vec<Key>,
    journal: Vec<(Key, Option<Option<Draft>>)>,
    /// Why a `put` or `delete` of the event being applied was refused.
    refused: Option<ProjectionError>,
}

impl Docs {
    pub(crate) fn load(&mut self, view: &'static str, id: String, doc: Option<Draft>) {
        self.current.insert((view, id), doc);
    }

    /// The document, if it exists. Only documents named by [`Projector::keys`] are loaded.
    pub fn get(&self, view: &'static str, id: &str) -> Option<&Draft> {
        self.current.get(&(view, id.to_string())).and_then(|d| d.as_ref())
    }

    /// Writes the document, unless no store could hold it (a NUL anywhere, a key too long):
    /// then nothing changes and the event fails once `apply` returns.
    pub fn put(&mut self, view: &'static str, id: &str, draft: Draft) {
        match store::views::check_doc(view, id, &draft.partition, &draft.sort_key, &draft.body) {
            Ok(()) => self.set((view, id.to_string()), Some(draft)),
            Err(e) => self.refuse(e),
        }
    }

    pub fn delete(&mut self, view: &'static str, id: &str) {
        match store::views::check_delete(view, id) {
            Ok(()) => self.set((view, id.to_string()), None),
            Err(e) => self.refuse(e),
        }
    }

    fn refuse(&mut self, e: store::StoreError) {
        let reason = match e {
            store::StoreError::Invalid(reason) => reason,
            other => other.to_string(),
        };
        self.refused.get_or_insert(ProjectionError::Unstorable(reason));
    }

    /// Why the event just applied must fail although `apply` succeeded.
    pub(crate) fn take_refusal(&mut self) -> Option<ProjectionError> {
        self.refused.take()
    }

    fn set(&mut self, key: Key, value: Option<Draft>) {
        let previous = self.current.insert(key.clone(), value);
        self.journal.push((key.clone(), previous));
        if !self.dirty.contains(&key) {
            self.dirty.push(key);
        }
    }

    pub(crate) fn begin(&mut self) {
        self.journal.clear();
        self.refused = None;
    }

    pub(crate) fn rollback(&mut self) {
        while let Some((key, previous)) = self.journal.pop() {
            match previous {
                Some(p) => self.current.insert(key, p),
                None => self.current.remove(&key),
            };
        }
    }

    /// The changes to write, with view names mapped to where they are stored.
    pub(crate) fn changes(&mut self, storage_view: impl Fn(&str) -> String) -> Vec<DocChange> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|key| {
                let view = storage_view(key.0);
                match self.current.get(&key).cloned().flatten() {
                    Some(d) => {
                        DocChange::Put { view, id: key.1, partition: d.partition, sort_key: d.sort_key, body: d.body }
                    }
                    None => DocChange::Delete { view, id: key.1 },
                }
            })
            .collect()
    }
}

/// A read model builder. Implementations are pure: no I/O, no clock.
pub trait Projector: Send + Sync + 'static {
    /// Stable name, stored with the checkpoint.
    fn name(&self) -> &'static str;

    /// Bump when the views' shape or meaning changes: the runner then rebuilds them.
    fn version(&self) -> u32;

    /// The views this projector owns.
    fn views(&self) -> &'static [&'static str];

    /// The documents `apply` will read or write for this event.
    fn keys(&self, event: &RecordedEvent) -> Vec<(&'static str, String)>;

    /// Applies one event to the loaded documents.
    fn apply(&self, event: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(sort_key: &str, body: Value) -> Draft {
        Draft { partition: String::new(), sort_key: sort_key.into(), body }
    }

    #[test]
    fn a_document_no_store_can_hold_is_refused_before_any_store_sees_it() {
        let mut docs = Docs::default();
        docs.begin();
        docs.put("v", "ok", draft("a", json!({})));
        docs.put("v", "nul-key", draft("a\u{0}b", json!({})));
        docs.put("v", "nul-body", draft("a", json!({"text": "\u{0}"})));
        docs.delete("v", &"x".repeat(store::views::MAX_ID_BYTES + 1));
        let refusal = docs.take_refusal().expect("refused");
        assert!(
            matches!(&refusal, ProjectionError::Unstorable(m) if m.contains("'nul-key'") && m.contains("sort key contains a NUL")),
            "the first refusal is kept: {refusal}"
        );
        assert!(docs.get("v", "nul-key").is_none() && docs.get("v", "nul-body").is_none());
        let changes = docs.changes(str::to_string);
        assert_eq!(changes.iter().map(|c| c.key().1).collect::<Vec<_>>(), vec!["ok"], "only the storable one");

        docs.begin();
        assert!(docs.take_refusal().is_none(), "each event starts without a refusal");
    }
}
