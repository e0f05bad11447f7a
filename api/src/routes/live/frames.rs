//! The wire frames: server to client (`ready`, `event`, `typing`, `error`) and client to server
//! (`typing`), and what an event frame leaves out.

use chrono::{DateTime, Utc};
use domain::session::Party;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::{Position, RecordedEvent};
use uuid::Uuid;

/// Blanks secrets before an event leaves: users' password hashes and token digests, and the
/// digest of the visitor's token.
pub fn redact(event_type: &str, data: &mut Value) {
    domain::user::redact(event_type, data);
    if event_type == "SessionStarted" {
        if let Some(v) = data.get_mut("visitor_token_sha256") {
            *v = Value::String("[redacted]".into());
        }
    }
}

/// Server to client.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutFrame<'a> {
    Ready {
        position: Position,
    },
    Event {
        position: Position,
        event_type: &'a str,
        stream_id: &'a str,
        stream_version: u64,
        data: &'a Value,
        recorded_at: DateTime<Utc>,
    },
    Typing {
        session_id: Uuid,
        party: Party,
        typing: bool,
    },
    Error {
        detail: &'a str,
    },
}

/// Client to server.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum InFrame {
    Typing { session_id: Uuid, typing: bool },
}

/// A serialized frame; event frames carry their position (what `?from=` resumes after).
pub(super) struct Frame {
    pub(super) text: String,
    pub(super) position: Option<Position>,
}

impl Frame {
    pub(super) fn of(frame: &OutFrame<'_>) -> Frame {
        let position = match frame {
            OutFrame::Event { position, .. } => Some(*position),
            _ => None,
        };
        Frame { text: serde_json::to_string(frame).expect("frames serialize"), position }
    }

    pub(super) fn event(e: &RecordedEvent) -> Frame {
        let mut data = e.data.clone();
        redact(&e.event_type, &mut data);
        Frame::of(&OutFrame::Event {
            position: e.position,
            event_type: &e.event_type,
            stream_id: &e.stream_id,
            stream_version: e.stream_version,
            data: &data,
            recorded_at: e.recorded_at,
        })
    }

    pub(super) fn error(detail: &str) -> Frame {
        Frame::of(&OutFrame::Error { detail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::live::story::S1;

    #[test]
    fn secrets_never_go_out() {
        let mut started = serde_json::json!({"session_id": S1, "visitor_token_sha256": "abc"});
        redact("SessionStarted", &mut started);
        assert_eq!(started["visitor_token_sha256"], "[redacted]");
        let mut token = serde_json::json!({"token_sha256": "abc", "expires_at": "2030-01-01T00:00:00Z"});
        redact("TokenIssued", &mut token);
        assert_eq!(token["token_sha256"], "[redacted]");
        let mut message = serde_json::json!({"text": "visitor_token_sha256"});
        redact("MessagePosted", &mut message);
        assert_eq!(message["text"], "visitor_token_sha256");
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let f = Frame::of(&OutFrame::Typing { session_id: S1, party: Party::Visitor, typing: true });
        let v: Value = serde_json::from_str(&f.text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "typing", "session_id": S1, "party": {"kind": "visitor"}, "typing": true})
        );
        let r: Value =
            serde_json::from_str(&Frame::of(&OutFrame::Ready { position: Position::new(3, 9) }).text).unwrap();
        assert_eq!(r, serde_json::json!({"type": "ready", "position": "3:9"}));
        let typing: InFrame =
            serde_json::from_value(serde_json::json!({"type": "typing", "session_id": S1, "typing": false})).unwrap();
        assert!(matches!(typing, InFrame::Typing { session_id: S1, typing: false }));
    }
}
