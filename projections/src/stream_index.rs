//! The stream index: one document per stream with its category, version, first and last
//! event time and event count. It proves the pipeline end to end and serves
//! `GET /api/v1/streams`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::{Position, RecordedEvent};

use crate::projector::{Docs, Draft, ProjectionError, Projector};

pub const VIEW: &str = "streams";

/// One stream, as listed by `GET /api/v1/streams`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamSummary {
    pub stream_id: String,
    pub category: String,
    /// Version of the last event (0-based).
    pub version: u64,
    pub event_count: u64,
    pub first_event_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    pub last_event_type: String,
    /// Global position of the last event (opaque `tx:pos`).
    #[schema(value_type = String, example = "0:42")]
    pub last_position: Position,
}

/// Builds [`StreamSummary`] documents, partitioned by category and sorted by stream id.
pub struct StreamIndex;

impl Projector for StreamIndex {
    fn name(&self) -> &'static str {
        "stream_index"
    }

    fn version(&self) -> u32 {
        1
    }

    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<(&'static str, String)> {
        vec![(VIEW, event.stream_id.clone())]
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        let summary = match docs.get(VIEW, &e.stream_id) {
            Some(d) => {
                let mut s: StreamSummary = serde_json::from_value(d.body.clone())
                    .map_err(|err| ProjectionError::Inconsistent(format!("stored summary unreadable: {err}")))?;
                if e.stream_version <= s.version {
                    return Err(ProjectionError::Inconsistent(format!(
                        "{} v{} arrived after v{}",
                        e.stream_id, e.stream_version, s.version
                    )));
                }
                s.version = e.stream_version;
                s.event_count += 1;
                s.last_event_at = e.recorded_at;
                s.last_event_type = e.event_type.clone();
                s.last_position = e.position;
                s
            }
            None => StreamSummary {
                stream_id: e.stream_id.clone(),
                category: e.category().to_string(),
                version: e.stream_version,
                event_count: 1,
                first_event_at: e.recorded_at,
                last_event_at: e.recorded_at,
                last_event_type: e.event_type.clone(),
                last_position: e.position,
            },
        };
        let body = serde_json::to_value(&summary).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(VIEW, &e.stream_id, Draft { partition: summary.category, sort_key: e.stream_id.clone(), body });
        Ok(())
    }
}
