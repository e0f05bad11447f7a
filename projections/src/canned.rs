//! The canned responses view: one document per live response, with its use count.
//!
//! A response's partition is its owner's id, or [`SHARED`] once shared: an operator's
//! suggestions are then two partitions (their own and the shared ones), never the whole view.

use chrono::{DateTime, Utc};
use domain::canned::CannedEvent;
use serde::{Deserialize, Serialize};
use store::views::ViewStore;
use store::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

pub const VIEW: &str = "canned_responses";
/// The partition of responses shared with every operator.
pub const SHARED: &str = "shared";

/// A canned response as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CannedSummary {
    pub canned_response_id: Uuid,
    pub owner_id: Uuid,
    /// Lower case, without the leading `:` (type `:shortcut` in a message).
    pub shortcut: String,
    pub text: String,
    /// Offered to every operator.
    pub shared: bool,
    pub use_count: u64,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Version of the response's stream: the `ETag` to send in `If-Match`.
    pub version: u64,
}

impl CannedSummary {
    /// The partition the document is listed in.
    pub fn partition(&self) -> String {
        if self.shared {
            SHARED.to_string()
        } else {
            self.owner_id.to_string()
        }
    }
}

/// Builds [`CannedSummary`] documents, sorted by shortcut within their partition.
pub struct CannedResponses;

impl Projector for CannedResponses {
    fn name(&self) -> &'static str {
        "canned_responses"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        match e.category() {
            "canned" => vec![(VIEW, e.stream_id.clone())],
            _ => vec![],
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if e.category() != "canned" {
            return Ok(());
        }
        let event: CannedEvent = ProjectionError::domain_event(e)?;
        let current: Option<CannedSummary> = docs
            .get(VIEW, &e.stream_id)
            .map(|d| serde_json::from_value(d.body.clone()))
            .transpose()
            .map_err(|err| ProjectionError::Inconsistent(format!("stored canned response unreadable: {err}")))?;
        let mut c = match (current, &event) {
            (_, CannedEvent::CannedResponseCreated { canned_id, owner_id, shortcut, text, shared }) => CannedSummary {
                canned_response_id: *canned_id,
                owner_id: *owner_id,
                shortcut: shortcut.clone(),
                text: text.clone(),
                shared: *shared,
                use_count: 0,
                last_used_at: None,
                version: 0,
            },
            (Some(c), _) => c,
            // Deleted responses have no document; nothing refers to them any more.
            (None, _) => return Ok(()),
        };
        match event {
            CannedEvent::CannedResponseEdited { shortcut, text } => {
                c.shortcut = shortcut;
                c.text = text;
            }
            CannedEvent::CannedResponseShared {} => c.shared = true,
            CannedEvent::CannedResponseUnshared {} => c.shared = false,
            CannedEvent::CannedResponseUsed { at, .. } => {
                c.use_count += 1;
                c.last_used_at = Some(at);
            }
            CannedEvent::CannedResponseDeleted {} => {
                docs.delete(VIEW, &e.stream_id);
                return Ok(());
            }
            CannedEvent::CannedResponseCreated { .. } => {}
        }
        c.version = e.stream_version;
        let body = serde_json::to_value(&c).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(VIEW, &e.stream_id, Draft { partition: c.partition(), sort_key: c.shortcut.clone(), body });
        Ok(())
    }
}

/// The responses of one partition (an owner's id or [`SHARED`]), in shortcut order.
pub async fn of_partition(views: &dyn ViewStore, partition: &str) -> Result<Vec<CannedSummary>, StoreError> {
    crate::read::all(views, VIEW, Some(partition)).await
}

/// Every response, in listing order.
pub async fn all(views: &dyn ViewStore) -> Result<Vec<CannedSummary>, StoreError> {
    crate::read::all(views, VIEW, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::aggregate::encode;
    use store::Position;

    fn recorded(version: u64, e: &CannedEvent) -> RecordedEvent {
        let (event_type, data) = encode(e);
        RecordedEvent {
            position: Position::START,
            event_id: Uuid::now_v7(),
            stream_id: "canned-00000000-0000-0000-0000-000000000064".into(),
            stream_version: version,
            event_type,
            schema_version: 1,
            data,
            metadata: serde_json::json!({}),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn uses_sharing_and_deletion_show_in_the_view() {
        let (owner, id) = (Uuid::from_u128(1), Uuid::from_u128(100));
        let at = Utc::now();
        let history = [
            CannedEvent::CannedResponseCreated {
                canned_id: id,
                owner_id: owner,
                shortcut: "hello".into(),
                text: "Hello!".into(),
                shared: false,
            },
            CannedEvent::CannedResponseUsed { by: owner, session_id: Uuid::from_u128(5), at },
            CannedEvent::CannedResponseShared {},
        ];
        let mut docs = Docs::default();
        for (v, e) in history.iter().enumerate() {
            CannedResponses.apply(&recorded(v as u64, e), &mut docs).unwrap();
        }
        let stream = "canned-00000000-0000-0000-0000-000000000064";
        let doc = docs.get(VIEW, stream).unwrap();
        assert_eq!((doc.partition.as_str(), doc.sort_key.as_str()), (SHARED, "hello"));
        let c: CannedSummary = serde_json::from_value(doc.body.clone()).unwrap();
        assert_eq!((c.use_count, c.last_used_at, c.version), (1, Some(at), 2));
        CannedResponses.apply(&recorded(3, &CannedEvent::CannedResponseDeleted {}), &mut docs).unwrap();
        assert!(docs.get(VIEW, stream).is_none());
    }
}
