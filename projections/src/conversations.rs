//! Conversations: one document per session for inboxes (partitioned by the operator handling
//! it, newest activity first), and the channels' queues of waiting conversations (oldest
//! first).

use chrono::{DateTime, Utc};
use domain::session::{Party, SessionEvent, SessionStatus};
use serde::{Deserialize, Serialize};
use store::views::ViewStore;
use store::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

/// Every conversation, partitioned by its current operator (`""` while waiting).
pub const VIEW: &str = "conversations";
/// Waiting conversations, partitioned by channel, oldest first.
pub const QUEUE: &str = "queue";
/// Per channel: conversations started and abandoned (abandoned ones are left out of counts).
pub const STATS: &str = "channel_conversations";

/// Conversation counts of one channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelCounts {
    pub started: u64,
    pub abandoned: u64,
}

impl ChannelCounts {
    /// Conversations that count: every one the visitor took part in.
    pub fn conversations(&self) -> u64 {
        self.started.saturating_sub(self.abandoned)
    }
}

/// A conversation as inboxes list it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversationSummary {
    pub session_id: Uuid,
    pub channel_id: Uuid,
    pub visitor_name: String,
    pub country: Option<String>,
    #[schema(value_type = String, example = "active")]
    pub status: SessionStatus,
    pub operator_id: Option<Uuid>,
    /// Every operator who handled it, in order.
    pub handlers: Vec<Uuid>,
    pub started_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub message_count: u64,
    /// Visitor messages after the operator's seen mark.
    pub unread_for_operator: u64,
    /// Operator messages after the visitor's seen mark.
    pub unread_for_visitor: u64,
    pub last_message: Option<String>,
    /// Message ids in order, with their author side (`v`isitor, `o`perator, `s`ystem), to
    /// count unread messages after a seen mark.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub order: Vec<(Uuid, char)>,
    /// The visitor never wrote: left out of counts and reports.
    #[serde(default)]
    pub abandoned: bool,
    /// The channel it started in (where it is counted).
    #[serde(default)]
    pub started_channel_id: Option<Uuid>,
    /// Version of the session's stream.
    pub version: u64,
}

fn unread(order: &[(Uuid, char)], seen: Option<Uuid>, from: char) -> u64 {
    let start = seen.and_then(|s| order.iter().position(|(id, _)| *id == s)).map_or(0, |i| i + 1);
    order[start.min(order.len())..].iter().filter(|(_, side)| *side == from).count() as u64
}

/// Newest first in an ascending listing.
fn newest_first(t: DateTime<Utc>) -> String {
    format!("{:020}", i64::MAX - t.timestamp_micros())
}

/// Builds [`ConversationSummary`] documents and the queues.
pub struct Conversations;

impl Projector for Conversations {
    fn name(&self) -> &'static str {
        "conversations"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW, QUEUE, STATS]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        if e.category() == "session" {
            let mut keys = vec![(VIEW, e.stream_id.clone()), (QUEUE, e.stream_id.clone())];
            // The channel a conversation is counted in: named by its start and by its close.
            let channel = e.data.get("channel_id").or_else(|| e.data.get("started_channel_id"));
            if let Some(channel) = channel.and_then(|c| c.as_str()) {
                keys.push((STATS, channel.to_string()));
            }
            keys
        } else {
            vec![]
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if e.category() != "session" {
            return Ok(());
        }
        let event: SessionEvent = ProjectionError::domain_event(e)?;
        let current: Option<ConversationSummary> = docs
            .get(VIEW, &e.stream_id)
            .map(|d| serde_json::from_value(d.body.clone()))
            .transpose()
            .map_err(|err| ProjectionError::Inconsistent(format!("stored conversation unreadable: {err}")))?;
        let mut c = match (current, &event) {
            (_, SessionEvent::SessionStarted { session_id, channel_id, visitor_name, country, .. }) => {
                ConversationSummary {
                    session_id: *session_id,
                    channel_id: *channel_id,
                    visitor_name: visitor_name.clone(),
                    country: country.as_ref().map(|c| c.to_string()),
                    status: SessionStatus::Waiting,
                    operator_id: None,
                    handlers: vec![],
                    started_at: e.recorded_at,
                    last_activity_at: e.recorded_at,
                    message_count: 0,
                    unread_for_operator: 0,
                    unread_for_visitor: 0,
                    last_message: None,
                    order: vec![],
                    abandoned: false,
                    started_channel_id: Some(*channel_id),
                    version: 0,
                }
            }
            (Some(c), _) => c,
            (None, _) => return Err(ProjectionError::Inconsistent(format!("{} before SessionStarted", e.event_type))),
        };
        let mut seen: (Option<Uuid>, Option<Uuid>) = (None, None);
        let counted = |docs: &mut Docs, channel: Uuid, f: &dyn Fn(&mut ChannelCounts)| -> Result<(), ProjectionError> {
            let key = channel.to_string();
            let mut counts: ChannelCounts = docs
                .get(STATS, &key)
                .map(|d| serde_json::from_value(d.body.clone()))
                .transpose()
                .map_err(|err| ProjectionError::Inconsistent(err.to_string()))?
                .unwrap_or_default();
            f(&mut counts);
            let body = serde_json::to_value(&counts).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
            docs.put(STATS, &key, Draft { partition: String::new(), sort_key: key.clone(), body });
            Ok(())
        };
        match event {
            SessionEvent::SessionStarted { channel_id, .. } => counted(docs, channel_id, &|c| c.started += 1)?,
            SessionEvent::PageVisited { .. } => {}
            SessionEvent::SessionQueued {} => {
                c.status = SessionStatus::Waiting;
                c.operator_id = None;
            }
            SessionEvent::OperatorAssigned { operator_id, .. } => {
                c.status = SessionStatus::Active;
                c.operator_id = Some(operator_id);
                if !c.handlers.contains(&operator_id) {
                    c.handlers.push(operator_id);
                }
            }
            SessionEvent::MessagePosted { message_id, author, text, .. } => {
                let side = match author {
                    Party::Visitor => 'v',
                    Party::Operator { .. } => 'o',
                    Party::System => 's',
                };
                c.order.push((message_id, side));
                c.message_count += 1;
                c.last_message = Some(text.chars().take(140).collect());
                c.last_activity_at = e.recorded_at;
                match side {
                    'v' => c.unread_for_operator += 1,
                    'o' => c.unread_for_visitor += 1,
                    _ => {}
                }
            }
            SessionEvent::MessageEdited { .. } | SessionEvent::MessageDeleted { .. } => {}
            // The rating's system message, as the history shows it; it notifies the operator.
            SessionEvent::ConversationRated { message_id, value, feedback, .. } => {
                c.order.push((message_id, 's'));
                c.message_count += 1;
                let text = domain::session::rating_message(value, feedback.as_deref());
                c.last_message = Some(text.chars().take(140).collect());
                c.last_activity_at = e.recorded_at;
            }
            SessionEvent::MessagesSeen { by, up_to } => match by {
                Party::Visitor => seen.1 = Some(up_to),
                _ => seen.0 = Some(up_to),
            },
            SessionEvent::SessionTransferred { to_channel, .. } => {
                c.channel_id = to_channel;
                c.operator_id = None;
                c.status = SessionStatus::Waiting;
            }
            // A chatbot answers: out of the queue until its script ends without an operator.
            SessionEvent::ChatbotStarted { .. } => c.status = SessionStatus::Bot,
            SessionEvent::ChatbotRestarted { message_id } => {
                c.status = SessionStatus::Bot;
                c.order.push((message_id, 'b'));
                c.message_count += 1;
                c.last_activity_at = e.recorded_at;
            }
            SessionEvent::ChatbotStepPosted { message_id, text, .. }
            | SessionEvent::ChatbotSaid { message_id, text } => {
                c.order.push((message_id, 'b'));
                c.message_count += 1;
                c.last_message = Some(text.chars().take(140).collect());
                c.last_activity_at = e.recorded_at;
            }
            // The visitor's answers to the bot are their messages (not unread: the bot read them).
            SessionEvent::ChatbotAnswered { message_id, text, .. } => {
                c.order.push((message_id, 'v'));
                c.message_count += 1;
                c.last_message = Some(text.chars().take(140).collect());
                c.last_activity_at = e.recorded_at;
            }
            SessionEvent::ChatbotForwarding { .. } | SessionEvent::ChatbotEnded { .. } => {}
            SessionEvent::SessionClosed { reason, started_channel_id, .. } => {
                c.status = SessionStatus::Closed;
                c.last_activity_at = e.recorded_at;
                if reason == domain::session::CloseReason::Abandoned {
                    // Counted where it started: the channel `SessionStarted` named.
                    if let Some(started_in) = started_channel_id {
                        counted(docs, started_in, &|c| c.abandoned += 1)?;
                    }
                    c.abandoned = true;
                }
            }
        }
        if let Some(up_to) = seen.0 {
            c.unread_for_operator = unread(&c.order, Some(up_to), 'v');
        }
        if let Some(up_to) = seen.1 {
            c.unread_for_visitor = unread(&c.order, Some(up_to), 'o');
        }
        c.version = e.stream_version;
        let partition = c.operator_id.map(|o| o.to_string()).unwrap_or_default();
        let body = serde_json::to_value(&c).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(
            VIEW,
            &e.stream_id,
            Draft { partition, sort_key: newest_first(c.last_activity_at), body: body.clone() },
        );
        if c.status == SessionStatus::Waiting {
            let sort_key = format!("{:020}", c.started_at.timestamp_micros());
            docs.put(QUEUE, &e.stream_id, Draft { partition: c.channel_id.to_string(), sort_key, body });
        } else if docs.get(QUEUE, &e.stream_id).is_some() {
            docs.delete(QUEUE, &e.stream_id);
        }
        Ok(())
    }
}

/// `operator`'s conversations, newest activity first, at most `limit`.
pub async fn inbox(
    views: &dyn ViewStore,
    operator: Uuid,
    limit: usize,
) -> Result<Vec<ConversationSummary>, StoreError> {
    crate::read::first(views, VIEW, Some(&operator.to_string()), limit).await
}

/// The conversations waiting in `channel`'s queue, oldest first, at most `limit`.
pub async fn queue(views: &dyn ViewStore, channel: Uuid, limit: usize) -> Result<Vec<ConversationSummary>, StoreError> {
    crate::read::first(views, QUEUE, Some(&channel.to_string()), limit).await
}

/// Every conversation, in listing order.
pub async fn all(views: &dyn ViewStore) -> Result<Vec<ConversationSummary>, StoreError> {
    crate::read::all(views, VIEW, None).await
}

/// Every conversation waiting in `channel`'s queue, oldest first.
pub async fn queue_all(views: &dyn ViewStore, channel: Uuid) -> Result<Vec<ConversationSummary>, StoreError> {
    crate::read::all(views, QUEUE, Some(&channel.to_string())).await
}

/// Every channel's conversation counts, by channel.
pub async fn counts_by_channel(
    views: &dyn ViewStore,
) -> Result<std::collections::HashMap<Uuid, ChannelCounts>, StoreError> {
    let keyed = crate::read::all_with_ids::<ChannelCounts>(views, STATS, None).await?;
    // Keyed by the channel's id (see `counted` in the projector).
    Ok(keyed.into_iter().filter_map(|(id, c)| Some((id.parse().ok()?, c))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_counts_follow_the_seen_mark() {
        let ids: Vec<Uuid> = (0..4).map(Uuid::from_u128).collect();
        let order = vec![(ids[0], 'o'), (ids[1], 'v'), (ids[2], 'v'), (ids[3], 'o')];
        assert_eq!(unread(&order, None, 'v'), 2);
        assert_eq!(unread(&order, Some(ids[1]), 'v'), 1);
        assert_eq!(unread(&order, Some(ids[3]), 'v'), 0);
        assert_eq!(unread(&order, Some(ids[0]), 'o'), 1);
        assert!(newest_first(Utc::now()) < newest_first(Utc::now() - chrono::Duration::seconds(1)));
    }
}
