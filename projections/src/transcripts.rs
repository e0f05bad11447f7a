//! Transcripts: one document per transcript, partitioned by whether it is still
//! [`PENDING`] (listed by next attempt time, the outbox worker's to-do list) or [`DONE`].
//! It also maps a transcript id to its conversation for the status route.

use chrono::{DateTime, Utc};
use domain::transcript::{Delivery, Requester, TranscriptEvent, TranscriptStatus};
use serde::{Deserialize, Serialize};
use store::views::ViewStore;
use store::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

pub const VIEW: &str = "transcripts";
/// Requested and neither delivered nor given up.
pub const PENDING: &str = "pending";
/// Delivered or given up.
pub const DONE: &str = "done";

/// A transcript and where its delivery stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptDoc {
    pub transcript_id: Uuid,
    pub session_id: Uuid,
    pub email: String,
    #[schema(value_type = Object)]
    pub requested_by: Requester,
    #[schema(value_type = String, example = "pending")]
    pub status: TranscriptStatus,
    pub requested_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: u32,
    /// While pending: when the worker tries (again).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, example = "smtp")]
    pub delivered_via: Option<Delivery>,
    /// The SMTP server's answer or the `.eml` file's name.
    pub detail: Option<String>,
}

fn micros(t: DateTime<Utc>) -> String {
    format!("{:020}", t.timestamp_micros())
}

/// Builds [`TranscriptDoc`] documents.
pub struct Transcripts;

fn transcript_id(e: &RecordedEvent) -> Option<String> {
    e.data.get("transcript_id").and_then(|v| v.as_str()).map(String::from)
}

impl Projector for Transcripts {
    fn name(&self) -> &'static str {
        "transcripts"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        match (e.category(), transcript_id(e)) {
            ("transcript", Some(id)) => vec![(VIEW, id)],
            _ => vec![],
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if e.category() != "transcript" {
            return Ok(());
        }
        let event: TranscriptEvent = ProjectionError::domain_event(e)?;
        let id = transcript_id(e).unwrap_or_default();
        let current: Option<TranscriptDoc> = docs
            .get(VIEW, &id)
            .map(|d| serde_json::from_value(d.body.clone()))
            .transpose()
            .map_err(|err| ProjectionError::Inconsistent(format!("stored transcript unreadable: {err}")))?;
        let mut t = match (current, &event) {
            (
                _,
                TranscriptEvent::TranscriptRequested { transcript_id, session_id, email, requested_by, requested_at },
            ) => TranscriptDoc {
                transcript_id: *transcript_id,
                session_id: *session_id,
                email: email.clone(),
                requested_by: *requested_by,
                status: TranscriptStatus::Pending,
                requested_at: *requested_at,
                attempts: 0,
                next_attempt_at: Some(*requested_at),
                last_error: None,
                delivered_via: None,
                detail: None,
            },
            (Some(t), _) => t,
            (None, _) => {
                return Err(ProjectionError::Inconsistent(format!("{} before TranscriptRequested", e.event_type)))
            }
        };
        match event {
            TranscriptEvent::TranscriptRequested { .. } => {}
            TranscriptEvent::TranscriptAttemptFailed { attempt, error, next_attempt_at, .. } => {
                t.attempts = attempt;
                t.last_error = Some(error);
                t.next_attempt_at = Some(next_attempt_at);
            }
            TranscriptEvent::TranscriptDelivered { attempt, via, detail, .. } => {
                t.attempts = attempt;
                t.status = TranscriptStatus::Delivered;
                t.next_attempt_at = None;
                t.delivered_via = Some(via);
                t.detail = Some(detail);
            }
            TranscriptEvent::TranscriptGaveUp { attempts, error, .. } => {
                t.attempts = attempts;
                t.status = TranscriptStatus::Failed;
                t.next_attempt_at = None;
                t.last_error = Some(error);
            }
        }
        let (partition, sort_key) = match t.next_attempt_at {
            Some(next) => (PENDING, micros(next)),
            None => (DONE, micros(t.requested_at)),
        };
        let body = serde_json::to_value(&t).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(VIEW, &id, Draft { partition: partition.to_string(), sort_key, body });
        Ok(())
    }
}

/// One transcript's document.
pub async fn get(views: &dyn ViewStore, transcript_id: Uuid) -> Result<Option<TranscriptDoc>, StoreError> {
    crate::read::get(views, VIEW, &transcript_id.to_string()).await
}

/// The pending transcripts, by next attempt time.
pub async fn pending(views: &dyn ViewStore) -> Result<Vec<TranscriptDoc>, StoreError> {
    crate::read::all(views, VIEW, Some(PENDING)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(version: u64, e: &TranscriptEvent) -> RecordedEvent {
        let (event_type, data) = domain::aggregate::encode(e);
        RecordedEvent {
            position: store::Position::START,
            event_id: Uuid::now_v7(),
            stream_id: format!("transcript-{}", Uuid::from_u128(1)),
            stream_version: version,
            event_type,
            schema_version: 1,
            data,
            metadata: serde_json::json!({}),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn a_transcript_stays_pending_by_next_attempt_until_delivered() {
        let id = Uuid::from_u128(7);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let history = [
            TranscriptEvent::TranscriptRequested {
                transcript_id: id,
                session_id: Uuid::from_u128(1),
                email: "marie@example.com".into(),
                requested_by: Requester::Visitor,
                requested_at: t0,
            },
            TranscriptEvent::TranscriptAttemptFailed {
                transcript_id: id,
                attempt: 1,
                error: "451 later".into(),
                next_attempt_at: t0 + chrono::Duration::seconds(30),
            },
            TranscriptEvent::TranscriptDelivered {
                transcript_id: id,
                attempt: 2,
                via: Delivery::Smtp,
                detail: "250 ok".into(),
            },
        ];
        let mut docs = Docs::default();
        docs.load(VIEW, id.to_string(), None);
        let mut seen = Vec::new();
        for (v, e) in history.iter().enumerate() {
            let r = recorded(v as u64, e);
            assert_eq!(Transcripts.keys(&r), vec![(VIEW, id.to_string())]);
            Transcripts.apply(&r, &mut docs).unwrap();
            let d = docs.get(VIEW, &id.to_string()).unwrap();
            seen.push((d.partition.clone(), d.sort_key.clone(), d.body["attempts"].clone()));
        }
        let retry = micros(t0 + chrono::Duration::seconds(30));
        assert_eq!(
            seen,
            vec![
                (PENDING.to_string(), micros(t0), serde_json::json!(0)),
                (PENDING.to_string(), retry, serde_json::json!(1)),
                (DONE.to_string(), micros(t0), serde_json::json!(2)),
            ]
        );
        let done: TranscriptDoc =
            serde_json::from_value(docs.get(VIEW, &id.to_string()).unwrap().body.clone()).unwrap();
        assert_eq!(
            (done.status, done.next_attempt_at, done.detail.as_deref()),
            (TranscriptStatus::Delivered, None, Some("250 ok"))
        );
    }
}
