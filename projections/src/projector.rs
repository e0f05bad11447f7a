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
/// leaves no trace in the views.
#[derive(Default)]
pub struct Docs {
    current: HashMap<Key, Option<Draft>>,
    dirty: Vec<Key>,
    journal: Vec<(Key, Option<Option<Draft>>)>,
}

impl Docs {
    pub(crate) fn load(&mut self, view: &'static str, id: String, doc: Option<Draft>) {
        self.current.insert((view, id), doc);
    }

    /// The document, if it exists. Only documents named by [`Projector::keys`] are loaded.
    pub fn get(&self, view: &'static str, id: &str) -> Option<&Draft> {
        self.current.get(&(view, id.to_string())).and_then(|d| d.as_ref())
    }

    pub fn put(&mut self, view: &'static str, id: &str, draft: Draft) {
        self.set((view, id.to_string()), Some(draft));
    }

    pub fn delete(&mut self, view: &'static str, id: &str) {
        self.set((view, id.to_string()), None);
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
