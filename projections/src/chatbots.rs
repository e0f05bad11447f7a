//! The chatbots view: one document per script for listing (title order, as Odoo lists
//! them). Running conversations do not read it: each copies its script version when its bot
//! starts.

use domain::chatbot::{warnings, Chatbot, ChatbotEvent, Warning};
use domain::Aggregate;
use serde::{Deserialize, Serialize};
use store::views::ViewStore;
use store::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

pub const VIEW: &str = "chatbots";

/// A script as lists show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatbotSummary {
    pub chatbot_id: Uuid,
    pub title: String,
    /// The bot's name as visitors see it (the title unless set).
    pub author_name: String,
    pub active: bool,
    pub step_count: usize,
    /// `first_step_operator` or `first_step_invalid` (Odoo's welcome-step warnings).
    #[schema(value_type = Vec<String>)]
    pub warnings: Vec<Warning>,
    /// Version of the script's stream: the `ETag` to send in `If-Match`.
    pub version: u64,
}

/// Builds [`ChatbotSummary`] documents; the document keeps the folded steps so the next event
/// can be applied without reading the stream.
pub struct Chatbots;

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    summary: ChatbotSummary,
    /// The script's events so far, folded again on each event (scripts are small).
    events: Vec<ChatbotEvent>,
}

impl Projector for Chatbots {
    fn name(&self) -> &'static str {
        "chatbots"
    }
    /// 2: the sort key separates title and id with U+001F (it was NUL, which PostgreSQL
    /// cannot store).
    fn version(&self) -> u32 {
        2
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        match e.category() {
            "chatbot" => vec![(VIEW, e.stream_id.clone())],
            _ => vec![],
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if e.category() != "chatbot" {
            return Ok(());
        }
        let event: ChatbotEvent = ProjectionError::domain_event(e)?;
        let mut events: Vec<ChatbotEvent> = match docs.get(VIEW, &e.stream_id) {
            Some(d) => {
                serde_json::from_value::<Stored>(d.body.clone())
                    .map_err(|err| ProjectionError::Inconsistent(format!("stored chatbot unreadable: {err}")))?
                    .events
            }
            None => vec![],
        };
        events.push(event);
        let bot = Chatbot::from_history(&events);
        let Some(chatbot_id) = bot.id else {
            return Err(ProjectionError::Inconsistent(format!("{} before ChatbotCreated", e.event_type)));
        };
        let summary = ChatbotSummary {
            chatbot_id,
            title: bot.title.clone(),
            author_name: bot.author().to_string(),
            active: bot.active,
            step_count: bot.steps.len(),
            warnings: warnings(&bot.script(e.stream_version)),
            version: e.stream_version,
        };
        // U+001F sorts below every printable character: "ab" before "ab c", as with NUL.
        let sort_key = format!("{}\u{1f}{chatbot_id}", bot.title.to_lowercase());
        let body = serde_json::to_value(Stored { summary, events })
            .map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(VIEW, &e.stream_id, Draft { partition: String::new(), sort_key, body });
        Ok(())
    }
}

/// A stored document's summary.
pub fn summary(body: serde_json::Value) -> Option<ChatbotSummary> {
    serde_json::from_value::<Stored>(body).ok().map(|s| s.summary)
}

/// Every script's summary, in listing order.
pub async fn all(views: &dyn ViewStore) -> Result<Vec<ChatbotSummary>, StoreError> {
    Ok(crate::read::all::<Stored>(views, VIEW, None).await?.into_iter().map(|s| s.summary).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use domain::aggregate::encode;
    use domain::chatbot::StepType;
    use store::Position;

    fn recorded(version: u64, e: &ChatbotEvent) -> RecordedEvent {
        let (event_type, data) = encode(e);
        RecordedEvent {
            position: Position::START,
            event_id: Uuid::now_v7(),
            stream_id: "chatbot-00000000-0000-0000-0000-000000000001".into(),
            stream_version: version,
            event_type,
            schema_version: 1,
            data,
            metadata: serde_json::json!({}),
            recorded_at: Utc::now(),
        }
    }

    fn sort_key_of(title: &str) -> String {
        let created = ChatbotEvent::ChatbotCreated {
            chatbot_id: Uuid::from_u128(1),
            title: title.into(),
            author_name: None,
            active: true,
        };
        let mut docs = Docs::default();
        docs.begin();
        Chatbots.apply(&recorded(0, &created), &mut docs).unwrap();
        assert!(docs.take_refusal().is_none(), "every store can hold the document of {title:?}");
        docs.get(VIEW, "chatbot-00000000-0000-0000-0000-000000000001").unwrap().sort_key.clone()
    }

    #[test]
    fn scripts_list_in_title_order_a_title_before_its_longer_versions() {
        let titles = ["Ab", "ab c", "abc", "Ab!", "b"];
        let mut keys: Vec<(String, &str)> = titles.iter().map(|t| (sort_key_of(t), *t)).collect();
        keys.sort();
        assert_eq!(keys.iter().map(|(_, t)| *t).collect::<Vec<_>>(), vec!["Ab", "ab c", "Ab!", "abc", "b"]);
        assert!(keys.iter().all(|(k, _)| !k.contains('\u{0}')), "PostgreSQL text cannot hold NUL");
    }

    #[test]
    fn the_list_shows_title_author_steps_and_warnings() {
        let history = [
            ChatbotEvent::ChatbotCreated {
                chatbot_id: Uuid::from_u128(1),
                title: "Support".into(),
                author_name: None,
                active: true,
            },
            ChatbotEvent::ChatbotStepAdded {
                step_id: Uuid::from_u128(2),
                step_type: StepType::Text,
                message: "Hi".into(),
                index: 0,
            },
        ];
        let mut docs = Docs::default();
        for (v, e) in history.iter().enumerate() {
            Chatbots.apply(&recorded(v as u64, e), &mut docs).unwrap();
        }
        let doc = docs.get(VIEW, "chatbot-00000000-0000-0000-0000-000000000001").unwrap();
        let s = summary(doc.body.clone()).unwrap();
        assert_eq!((s.author_name.as_str(), s.step_count, s.version), ("Support", 1, 1));
        assert_eq!(s.warnings, vec![Warning::FirstStepInvalid], "a welcome of text only never waits");
    }
}
