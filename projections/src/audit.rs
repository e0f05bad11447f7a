//! The audit trail: who changed what and when, with the values before and after, across the
//! resources people configure (channels, users, chatbot scripts, canned responses).
//!
//! What an event changed is what `domain::audit` finds between the resource's folded state
//! before and after it, as a person sees the resource. The projector keeps each resource's
//! state in [`STATES`]; [`history`] folds one stream the same way at request time (that is
//! also how conversations are audited: they are not in this view).

use domain::aggregate::{decode_versioned, Aggregate, DecodeError};
use domain::audit::{apply, Audited};
use domain::canned::CannedResponse;
use domain::channel::Channel;
use domain::chatbot::Chatbot;
use domain::user::User;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::RecordedEvent;

pub use domain::audit::Change;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

/// Audit entries, partitioned by resource stream, newest first.
pub const VIEW: &str = "audit";
/// Each audited resource's state, folded from its stream (what "before" is computed from),
/// its secrets blanked.
pub const STATES: &str = "audit_states";
/// Version 1 kept the last value of each event field here; still owned so that the rebuild
/// to version 2 empties it.
const RETIRED_FIELDS: &str = "audit_fields";

/// Stream categories whose changes are audited.
pub const AUDITED: &[&str] = &[Channel::CATEGORY, User::CATEGORY, Chatbot::CATEGORY, CannedResponse::CATEGORY];

/// [`Change`] as the OpenAPI document describes it (the type itself lives in `domain`,
/// which knows nothing of OpenAPI).
#[derive(utoipa::ToSchema)]
#[schema(as = Change)]
#[allow(dead_code)]
pub struct ChangeSchema {
    /// The setting's dotted path (`name`, `options.button_color`); for a collection item,
    /// the collection's path (item added or removed) or the path of the item's field that
    /// changed (`rules.url_regex`); `<collection>.order` for a new order.
    pub field: String,
    /// The collection item's id (for an order: the item holding the list, if nested).
    pub item: Option<String>,
    /// Any JSON value; `null`: none (not there yet).
    pub before: Value,
    /// Any JSON value; `null`: none (gone).
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
    /// What the event changed in the resource as a person sees it (secrets redacted); empty
    /// when it changed nothing a person sees (a conversation queued that was waiting already).
    #[schema(value_type = Vec<ChangeSchema>)]
    pub changes: Vec<Change>,
}

/// Newest first in an ascending listing, ties broken by the stream's version.
fn newest_first(e: &RecordedEvent) -> String {
    format!("{:020}.{:020}", i64::MAX - e.recorded_at.timestamp_micros(), u64::MAX - e.stream_version)
}

/// The entry for `e`, which changed `changes`.
pub fn entry(e: &RecordedEvent, changes: Vec<Change>) -> AuditEntry {
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

/// One stream's events as audit entries, oldest first: each diffed between the states the
/// events before it and up to it fold to.
pub fn history<A: Audited>(events: &[RecordedEvent]) -> Result<Vec<AuditEntry>, DecodeError> {
    let mut state = A::default();
    events
        .iter()
        .map(|e| {
            let event = decode_versioned::<A::Event>(&e.event_type, e.schema_version, &e.data)?;
            Ok(entry(e, apply(&mut state, &event)))
        })
        .collect()
}

/// Applies `e` to the stored state of its resource (`None` before its first event): the
/// entry and the state to store.
fn step<A>(stored: Option<&Value>, e: &RecordedEvent) -> Result<(AuditEntry, Value), ProjectionError>
where
    A: Audited + Serialize + DeserializeOwned,
{
    let inconsistent = |err: serde_json::Error| ProjectionError::Inconsistent(format!("audit state: {err}"));
    let mut state: A = match stored {
        Some(v) => A::deserialize(v).map_err(inconsistent)?,
        None => A::default(),
    };
    let event = ProjectionError::domain_event::<A::Event>(e)?;
    let entry = entry(e, apply(&mut state, &event));
    state.forget_secrets();
    Ok((entry, serde_json::to_value(&state).map_err(inconsistent)?))
}

type Step = fn(Option<&Value>, &RecordedEvent) -> Result<(AuditEntry, Value), ProjectionError>;

/// The aggregate each audited category folds to (the categories of [`AUDITED`]).
const STEPS: &[(&str, Step)] = &[
    (Channel::CATEGORY, step::<Channel>),
    (User::CATEGORY, step::<User>),
    (Chatbot::CATEGORY, step::<Chatbot>),
    (CannedResponse::CATEGORY, step::<CannedResponse>),
];

fn step_of(category: &str) -> Option<Step> {
    STEPS.iter().find(|(c, _)| *c == category).map(|(_, s)| *s)
}

/// Builds the audit trail.
pub struct Audit;

impl Projector for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }
    /// 2: changes computed from the folded state (1 compared event fields). 3: a user's
    /// open conversations carry the time of their claim (stored states are rebuilt).
    fn version(&self) -> u32 {
        3
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW, STATES, RETIRED_FIELDS]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        if step_of(e.category()).is_some() {
            vec![(STATES, e.stream_id.clone())]
        } else {
            vec![]
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        let Some(step) = step_of(e.category()) else { return Ok(()) };
        let (entry, state) = step(docs.get(STATES, &e.stream_id).map(|d| &d.body), e)?;
        let body = serde_json::to_value(&entry).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(
            VIEW,
            &e.event_id.to_string(),
            Draft { partition: e.stream_id.clone(), sort_key: newest_first(e), body },
        );
        docs.put(STATES, &e.stream_id, Draft { partition: String::new(), sort_key: e.stream_id.clone(), body: state });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::aggregate::encode;
    use domain::channel::{ChannelEvent, ChannelOptions};
    use domain::values::Color;
    use serde_json::json;
    use store::Position;
    use uuid::Uuid;

    fn event(version: u64, e: &ChannelEvent) -> RecordedEvent {
        recorded("channel-1", version, e)
    }

    fn recorded(stream: &str, version: u64, e: &impl Serialize) -> RecordedEvent {
        let (event_type, data) = encode(e);
        RecordedEvent {
            position: Position::new(0, version + 1),
            event_id: Uuid::from_u128(version as u128 + 1),
            stream_id: stream.into(),
            stream_version: version,
            schema_version: domain::upcast::current_version(&event_type),
            event_type,
            data,
            metadata: json!({"actor": {"kind": "operator", "id": null}, "request_id": "r-1"}),
            recorded_at: chrono::Utc::now(),
        }
    }

    fn history_of_a_channel() -> Vec<RecordedEvent> {
        let options = ChannelOptions { button_color: Color::parse("c", "#112233").unwrap(), ..Default::default() };
        [
            ChannelEvent::ChannelCreated { channel_id: Uuid::from_u128(1), name: "Support".into(), options },
            ChannelEvent::ChannelColorsReset {},
            ChannelEvent::ChannelRenamed { name: "Help".into() },
        ]
        .iter()
        .enumerate()
        .map(|(v, e)| event(v as u64, e))
        .collect()
    }

    /// Applies `events` with the projector, as the runner would (one document set).
    fn project(events: &[RecordedEvent]) -> Docs {
        let mut docs = Docs::default();
        for e in events {
            Audit.apply(e, &mut docs).unwrap();
        }
        docs
    }

    #[test]
    fn the_projector_and_a_history_read_at_request_time_record_the_same_entries() {
        let events = history_of_a_channel();
        let docs = project(&events);
        let from_history = history::<Channel>(&events).unwrap();
        for h in &from_history {
            let stored = docs.get(VIEW, &h.event_id.to_string()).expect("an entry per event");
            assert_eq!(serde_json::from_value::<AuditEntry>(stored.body.clone()).unwrap(), *h);
        }
        let reset = &from_history[1];
        assert_eq!(
            reset.changes,
            vec![Change {
                field: "options.button_color".into(),
                item: None,
                before: json!("#112233"),
                after: json!("#875A7B")
            }],
            "a reset is the values it reset"
        );
        assert_eq!(reset.request_id.as_deref(), Some("r-1"));
        let state: Channel = serde_json::from_value(docs.get(STATES, "channel-1").unwrap().body.clone()).unwrap();
        assert_eq!(state.name, "Help", "the stored state is the folded channel");
    }

    #[test]
    fn a_users_stored_state_keeps_no_secret_and_a_new_password_is_still_a_change() {
        use domain::user::UserEvent;
        let at = chrono::Utc::now();
        let events: Vec<RecordedEvent> = [
            UserEvent::UserCreated {
                user_id: Uuid::from_u128(2),
                name: "Ada".into(),
                login: domain::values::Email::parse("login", "ada@example.com").unwrap(),
                chat_name: None,
                languages: vec![],
                country: None,
                role: domain::user::Role::Operator,
                password_hash: "$argon2id$one".into(),
            },
            UserEvent::TokenIssued { token_sha256: "digest-one".into(), expires_at: at },
            UserEvent::PasswordChanged { password_hash: "$argon2id$two".into() },
            UserEvent::TokenIssued { token_sha256: "digest-two".into(), expires_at: at },
        ]
        .iter()
        .enumerate()
        .map(|(v, e)| recorded("user-2", v as u64, e))
        .collect();
        let docs = project(&events);
        let stored = docs.get(STATES, "user-2").unwrap().body.to_string();
        assert!(!stored.contains("argon2") && !stored.contains("digest"), "{stored}");
        for h in history::<User>(&events).unwrap() {
            let projected = docs.get(VIEW, &h.event_id.to_string()).unwrap().body.clone();
            assert_eq!(serde_json::from_value::<AuditEntry>(projected).unwrap(), h, "{}", h.event_type);
        }
        let changed =
            serde_json::from_value::<AuditEntry>(docs.get(VIEW, &events[2].event_id.to_string()).unwrap().body.clone());
        let password =
            Change { field: "password".into(), item: None, before: json!("[redacted]"), after: json!("[redacted]") };
        assert_eq!(changed.unwrap().changes[0], password);
    }

    #[test]
    fn other_streams_are_not_audited_and_an_unreadable_event_is_refused() {
        assert_eq!(STEPS.iter().map(|(c, _)| *c).collect::<Vec<_>>(), AUDITED, "each audited category is folded");
        let mut e = event(0, &ChannelEvent::ChannelRenamed { name: "x".into() });
        e.stream_id = "session-1".into();
        assert_eq!(Audit.keys(&e), vec![]);
        let mut docs = Docs::default();
        Audit.apply(&e, &mut docs).unwrap();
        assert!(docs.get(VIEW, &e.event_id.to_string()).is_none());
        let mut bad = event(0, &ChannelEvent::ChannelRenamed { name: "x".into() });
        bad.data = json!({"name": 3});
        assert!(matches!(Audit.apply(&bad, &mut Docs::default()), Err(ProjectionError::Decode { .. })));
    }

    /// The stored states are serialized domain structs: a change of their shape must bump
    /// [`Audit::version`] (so stored states are rebuilt), and this test says so.
    #[test]
    fn the_shape_of_stored_states_is_the_one_this_version_wrote() {
        fn fields<T: Default + Serialize>() -> Vec<String> {
            serde_json::to_value(T::default()).unwrap().as_object().unwrap().keys().cloned().collect()
        }
        let shapes = [
            ("channel", fields::<Channel>(), "archived id joined name operators options rules"),
            (
                "user",
                fields::<User>(),
                "active chat_name country id languages last_assigned_at login name open_conversations \
                 password_hash role status tokens",
            ),
            ("chatbot", fields::<Chatbot>(), "active author_name id steps title"),
            ("canned", fields::<CannedResponse>(), "deleted id last_used_at owner_id shared shortcut text use_count"),
        ];
        for (what, got, pinned) in shapes {
            assert_eq!(got.join(" "), pinned, "{what}'s state changed shape: bump Audit::version and this list");
        }
        // A user's open conversations (version 3: each with the time of its claim).
        let claim = domain::user::Claim { session_id: uuid::Uuid::nil(), at: chrono::Utc::now() };
        let keys: Vec<String> = serde_json::to_value(claim).unwrap().as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.join(" "), "at session_id", "a claim changed shape: bump Audit::version and this list");
        assert_eq!(Audit.version(), 3);
    }

    #[test]
    fn the_openapi_shape_of_a_change_is_its_json() {
        let schema = serde_json::to_value(<ChangeSchema as utoipa::PartialSchema>::schema()).unwrap();
        let mut documented: Vec<_> = schema["properties"].as_object().unwrap().keys().cloned().collect();
        documented.sort();
        let change = Change { field: "rules".into(), item: Some("r".into()), before: json!(1), after: json!(2) };
        let json: Vec<_> = serde_json::to_value(change).unwrap().as_object().unwrap().keys().cloned().collect();
        assert_eq!(documented, json);
        assert!(schema["properties"]["before"].get("type").is_none(), "any value: {schema}");
        assert_eq!(<ChangeSchema as utoipa::ToSchema>::name(), "Change");
        let entry = serde_json::to_value(<AuditEntry as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(entry["properties"]["changes"]["items"]["$ref"], "#/components/schemas/Change", "{entry}");
    }

    #[test]
    fn newest_entries_sort_first() {
        let (a, mut b) = (event(0, &ChannelEvent::ChannelArchived {}), event(1, &ChannelEvent::ChannelArchived {}));
        b.recorded_at = a.recorded_at + chrono::Duration::seconds(1);
        assert!(newest_first(&b) < newest_first(&a));
    }
}
