//! The audit trail: who changed what and when, with the values before and after, across the
//! resources people configure (channels, users, chatbot scripts, canned responses).
//!
//! An event's data names the fields it sets; the "before" of each is the value the same
//! resource's earlier events last gave it. That needs no knowledge of each aggregate, so a
//! new event type is audited the day it exists. Conversations are not in this view (their
//! history is their stream, read at request time).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use store::RecordedEvent;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

/// Audit entries, partitioned by resource stream, newest first.
pub const VIEW: &str = "audit";
/// The last value of every field of each audited resource (what "before" reads).
pub const FIELDS: &str = "audit_fields";

/// Stream categories whose changes are audited.
pub const AUDITED: &[&str] = &["channel", "user", "chatbot", "canned"];

/// One field an event set: its value before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    pub field: String,
    #[schema(value_type = Object)]
    pub before: Option<Value>,
    #[schema(value_type = Object)]
    pub after: Value,
}

/// One audit entry: an event with who, when and what it changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub event_id: uuid::Uuid,
    pub position: String,
    /// `channel`, `user`, `chatbot`, `canned` (or `session` in a conversation's history).
    pub resource: String,
    /// The resource's stream (`channel-<id>`).
    pub stream_id: String,
    pub version: u64,
    pub event_type: String,
    /// `{kind, id}` of whoever caused it.
    #[schema(value_type = Object)]
    pub actor: Value,
    pub request_id: Option<String>,
    /// The client's address (a keyed hash for visitors).
    pub client: Option<String>,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub changes: Vec<Change>,
}

/// Newest first in an ascending listing, ties broken by the stream's version.
fn newest_first(e: &RecordedEvent) -> String {
    format!("{:020}.{:020}", i64::MAX - e.recorded_at.timestamp_micros(), u64::MAX - e.stream_version)
}

/// The entry for `e` given the fields its resource had before (updated in place).
/// `redact` blanks secrets (password hashes, token digests) before anything is recorded.
pub fn entry(e: &RecordedEvent, fields: &mut Map<String, Value>, redact: impl Fn(&str, &mut Value)) -> AuditEntry {
    let mut data = e.data.clone();
    redact(&e.event_type, &mut data);
    let mut changes = Vec::new();
    if let Value::Object(set) = data {
        for (field, after) in set {
            let before = fields.insert(field.clone(), after.clone());
            if before.as_ref() != Some(&after) {
                changes.push(Change { field, before, after });
            }
        }
    }
    AuditEntry {
        event_id: e.event_id,
        position: e.position.to_string(),
        resource: e.category().to_string(),
        stream_id: e.stream_id.clone(),
        version: e.stream_version,
        event_type: e.event_type.clone(),
        actor: e.metadata.get("actor").cloned().unwrap_or(Value::Null),
        request_id: e.metadata.get("request_id").and_then(|r| r.as_str()).map(str::to_string),
        client: e.metadata.get("client").and_then(|r| r.as_str()).map(str::to_string),
        recorded_at: e.recorded_at,
        changes,
    }
}

/// Builds the audit trail.
pub struct Audit;

impl Projector for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW, FIELDS]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        if AUDITED.contains(&e.category()) {
            vec![(FIELDS, e.stream_id.clone())]
        } else {
            vec![]
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if !AUDITED.contains(&e.category()) {
            return Ok(());
        }
        let mut fields = match docs.get(FIELDS, &e.stream_id).map(|d| d.body.clone()) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let entry = entry(e, &mut fields, domain::user::redact);
        let body = serde_json::to_value(&entry).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(
            VIEW,
            &e.event_id.to_string(),
            Draft { partition: e.stream_id.clone(), sort_key: newest_first(e), body },
        );
        docs.put(
            FIELDS,
            &e.stream_id,
            Draft { partition: String::new(), sort_key: e.stream_id.clone(), body: Value::Object(fields) },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use store::Position;

    fn event(version: u64, event_type: &str, data: Value) -> RecordedEvent {
        RecordedEvent {
            position: Position::new(0, version + 1),
            event_id: uuid::Uuid::from_u128(version as u128 + 1),
            stream_id: "channel-1".into(),
            stream_version: version,
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata: json!({"actor": {"kind": "operator", "id": null}, "request_id": "r-1"}),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn each_field_an_event_sets_is_recorded_with_its_previous_value() {
        let mut fields = Map::new();
        let created =
            entry(&event(0, "ChannelCreated", json!({"name": "Support", "options": {"a": 1}})), &mut fields, |_, _| {});
        assert_eq!(created.changes.len(), 2);
        assert!(created.changes.iter().all(|c| c.before.is_none()));
        let renamed = entry(&event(1, "ChannelRenamed", json!({"name": "Help"})), &mut fields, |_, _| {});
        assert_eq!(
            renamed.changes,
            vec![Change { field: "name".into(), before: Some(json!("Support")), after: json!("Help") }]
        );
        assert_eq!(renamed.request_id.as_deref(), Some("r-1"));
        let same = entry(&event(2, "ChannelRenamed", json!({"name": "Help"})), &mut fields, |_, _| {});
        assert!(same.changes.is_empty(), "a value that did not change is not a change");
    }

    #[test]
    fn secrets_are_redacted_before_they_are_recorded() {
        let mut fields = Map::new();
        let e = entry(&event(0, "PasswordChanged", json!({"password_hash": "$argon2id$..."})), &mut fields, |_, d| {
            d["password_hash"] = json!("[redacted]")
        });
        assert_eq!(e.changes[0].after, json!("[redacted]"));
        assert_eq!(fields["password_hash"], json!("[redacted]"));
    }

    #[test]
    fn newest_entries_sort_first() {
        let (a, mut b) = (event(0, "X", json!({})), event(1, "X", json!({})));
        b.recorded_at = a.recorded_at + chrono::Duration::seconds(1);
        assert!(newest_first(&b) < newest_first(&a));
    }
}
