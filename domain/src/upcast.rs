//! Old shapes of stored events brought to the current one on read ("upcasting").
//!
//! The log is never rewritten: an event keeps the schema version it was written with, and
//! every reader (commands, projectors, histories) decodes through [`upcast`], which applies
//! one step per version until the current one. A new shape of an event type is a new step
//! here plus a fixture of the old JSON in the tests; writers always write [`current_version`].

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::canned::{CannedEvent, ShortcutEvent};
use crate::channel::ChannelEvent;
use crate::chatbot::ChatbotEvent;
use crate::error::DecodeError;
use crate::session::SessionEvent;
use crate::transcript::TranscriptEvent;
use crate::user::{LoginEvent, UserEvent};

/// The schema versions every event enum declares (`schema_versions!` next to each enum).
const DECLARED: &[&[(&str, u32)]] = &[
    CannedEvent::SCHEMA_VERSIONS,
    ShortcutEvent::SCHEMA_VERSIONS,
    ChannelEvent::SCHEMA_VERSIONS,
    ChatbotEvent::SCHEMA_VERSIONS,
    SessionEvent::SCHEMA_VERSIONS,
    TranscriptEvent::SCHEMA_VERSIONS,
    UserEvent::SCHEMA_VERSIONS,
    LoginEvent::SCHEMA_VERSIONS,
];

/// The schema version an event type is written at today, as its enum declares it; 1 for a
/// type no enum here declares.
pub fn current_version(event_type: &str) -> u32 {
    DECLARED.iter().flat_map(|table| table.iter()).find(|(name, _)| *name == event_type).map_or(1, |(_, v)| *v)
}

/// `data` as the current version of `event_type` has it.
pub fn upcast<'a>(event_type: &str, schema_version: u32, data: &'a Value) -> Result<Cow<'a, Value>, DecodeError> {
    let current = current_version(event_type);
    if schema_version == current {
        return Ok(Cow::Borrowed(data));
    }
    if schema_version == 0 || schema_version > current {
        return Err(DecodeError {
            event_type: event_type.to_string(),
            reason: format!(
                "schema version {schema_version} is not known to this version of livechat (at most {current})"
            ),
        });
    }
    let mut data = data.clone();
    for from in schema_version..current {
        step(event_type, from, &mut data);
    }
    Ok(Cow::Owned(data))
}

/// One version step: `from` -> `from + 1`.
fn step(event_type: &str, from: u32, data: &mut Value) {
    if let ("ChannelCreated" | "ChannelOptionsChanged", 1) = (event_type, from) {
        if let Some(options) = data.get_mut("options").and_then(Value::as_object_mut) {
            options.entry("max_conversations_per_operator").or_insert(Value::Null);
            options.entry("ratings_public").or_insert(json!(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::decode_versioned;
    use crate::channel::ChannelEvent;

    /// `ChannelCreated` as livechat wrote it before options had a maximum and a public page.
    const V1_CHANNEL_CREATED: &str = r##"{"channel_id":"01a0e4a7-0000-7000-8000-000000000001","name":"Support","options":{"notification_text":"Have a Question? Chat with us.","welcome_message":"Hello, how may I help you?","input_placeholder":"","button_color":"#875A7B","button_text_color":"#FFFFFF","header_color":"#875A7B","header_text_color":"#FFFFFF"}}"##;

    #[test]
    fn a_v1_channel_created_reads_as_today_with_the_later_options_explicit() {
        let v1: Value = serde_json::from_str(V1_CHANNEL_CREATED).unwrap();
        let up = upcast("ChannelCreated", 1, &v1).unwrap();
        assert_eq!(up["options"]["ratings_public"], json!(false));
        assert_eq!(up["options"]["max_conversations_per_operator"], Value::Null);
        assert_eq!(up["options"]["welcome_message"], v1["options"]["welcome_message"], "the rest is kept");
        let event: ChannelEvent = decode_versioned("ChannelCreated", 1, &v1).unwrap();
        let ChannelEvent::ChannelCreated { name, options, .. } = event else { panic!("{event:?}") };
        assert_eq!(
            (name.as_str(), options.ratings_public, options.max_conversations_per_operator),
            ("Support", false, None)
        );
    }

    #[test]
    fn event_types_are_declared_once_across_the_enums() {
        let mut names: Vec<&str> = DECLARED.iter().flat_map(|t| t.iter().map(|(n, _)| *n)).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "an event type in two enums would have one version for both");
        assert_eq!(current_version("ChannelOptionsChanged"), 2);
        assert_eq!(current_version("SessionStarted"), 1);
        assert_eq!(current_version("SomethingElse"), 1, "types outside domain are written at 1");
    }

    #[test]
    fn current_events_pass_untouched_and_unknown_versions_are_refused() {
        let data = json!({"name": "Help"});
        assert!(matches!(upcast("ChannelRenamed", 1, &data).unwrap(), Cow::Borrowed(_)));
        assert!(matches!(upcast("ChannelCreated", 2, &data).unwrap(), Cow::Borrowed(_)));
        let newer = upcast("ChannelCreated", 3, &data).unwrap_err();
        assert!(newer.reason.contains("schema version 3 is not known"), "{newer}");
        assert!(upcast("ChannelRenamed", 0, &data).is_err());
    }
}
