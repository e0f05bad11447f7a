//! Who caused an event and in answer to what: the `metadata` of every event.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Kind of actor behind an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Operator,
    Visitor,
    System,
    Bot,
}

/// The actor: a kind and, except for the system, an id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<Uuid>,
}

impl Actor {
    pub fn system() -> Self {
        Actor { kind: ActorKind::System, id: None }
    }
}

/// Event metadata (ARCHITECTURE.md section 2): a public, versioned format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: Actor,
    /// Shared by every event one request or conversation turn caused.
    pub correlation_id: Uuid,
    /// The event or command this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The client's address: as is for operators, a keyed hash for visitors (recognisable
    /// across their requests, not reversible without the server's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_json_is_stable() {
        let m = Metadata {
            actor: Actor { kind: ActorKind::Operator, id: Some(Uuid::from_u128(7)) },
            correlation_id: Uuid::from_u128(1),
            causation_id: Some(Uuid::from_u128(2)),
            request_id: Some("req-1".into()),
            client: None,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({
                "actor": {"kind": "operator", "id": "00000000-0000-0000-0000-000000000007"},
                "correlation_id": "00000000-0000-0000-0000-000000000001",
                "causation_id": "00000000-0000-0000-0000-000000000002",
                "request_id": "req-1"
            })
        );
        let system = Metadata {
            actor: Actor::system(),
            correlation_id: Uuid::nil(),
            causation_id: None,
            request_id: None,
            client: None,
        };
        let json = serde_json::to_string(&system).unwrap();
        assert_eq!(
            json,
            r#"{"actor":{"kind":"system","id":null},"correlation_id":"00000000-0000-0000-0000-000000000000"}"#
        );
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), system);
    }
}
