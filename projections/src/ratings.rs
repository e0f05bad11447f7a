//! Ratings: one document per rated conversation holding its latest rating, listed newest
//! first per channel (`ratings`) and per operator (`operator_ratings`), and all-time counts
//! per channel and per operator (`rating_counts`).
//!
//! The dashboard's share of happy ratings is over the last 14 days of the reading time,
//! which a pure projector cannot know: readers walk the channel's listing, newest first, and
//! stop at the window's edge, so the cost is the window's ratings, not the channel's history.

use chrono::{DateTime, Utc};
use domain::session::{SessionEvent, HAPPY, NEUTRAL};
use serde::{Deserialize, Serialize};
use store::views::ViewStore;
use store::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

/// Each rated conversation, partitioned by the channel it rates, newest rating first.
pub const VIEW: &str = "ratings";
/// The same documents, partitioned by the rated operator.
pub const BY_OPERATOR: &str = "operator_ratings";
/// All-time counts: `channel-<id>` and `operator-<id>` documents.
pub const COUNTS: &str = "rating_counts";

/// A conversation's latest rating.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RatingDoc {
    pub session_id: Uuid,
    pub channel_id: Uuid,
    pub operator_id: Uuid,
    /// 5 (happy), 3 (neutral) or 1 (unhappy).
    pub value: u8,
    /// `happy`, `neutral` or `unhappy`.
    pub rating: String,
    pub feedback: Option<String>,
    /// The rating's system message in the conversation's history.
    pub message_id: Uuid,
    /// When the visitor (last) rated.
    pub rated_at: DateTime<Utc>,
    /// How many times the visitor rated this conversation (the latest counts).
    pub times_rated: u32,
}

/// Ratings by value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RatingCounts {
    pub happy: u64,
    pub neutral: u64,
    pub unhappy: u64,
}

impl RatingCounts {
    pub fn total(&self) -> u64 {
        self.happy + self.neutral + self.unhappy
    }

    /// Counts one more (or, with `remove`, one less) rating of `value`.
    pub fn count(&mut self, value: u8, remove: bool) {
        let slot = match grade(value) {
            "happy" => &mut self.happy,
            "neutral" => &mut self.neutral,
            _ => &mut self.unhappy,
        };
        *slot = if remove { slot.saturating_sub(1) } else { *slot + 1 };
    }
}

/// Odoo's grades for a rating value: great (≥4), okay (≥3), bad.
pub fn grade(value: u8) -> &'static str {
    match value {
        v if v >= HAPPY - 1 => "happy",
        v if v >= NEUTRAL => "neutral",
        _ => "unhappy",
    }
}

pub fn channel_key(channel_id: Uuid) -> String {
    format!("channel-{channel_id}")
}

pub fn operator_key(operator_id: Uuid) -> String {
    format!("operator-{operator_id}")
}

/// Newest first in an ascending listing.
pub fn newest_first(t: DateTime<Utc>) -> String {
    format!("{:020}", i64::MAX - t.timestamp_micros())
}

/// Builds the rating views from `ConversationRated`.
pub struct Ratings;

fn rated_ids(e: &RecordedEvent) -> Option<(Uuid, Uuid)> {
    let id = |k: &str| e.data.get(k)?.as_str()?.parse::<Uuid>().ok();
    Some((id("channel_id")?, id("operator_id")?))
}

fn body<T: Serialize>(v: &T) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(v).map_err(|err| ProjectionError::Inconsistent(err.to_string()))
}

fn counts_of(docs: &Docs, key: &str) -> Result<RatingCounts, ProjectionError> {
    docs.get(COUNTS, key)
        .map(|d| serde_json::from_value(d.body.clone()))
        .transpose()
        .map_err(|err| ProjectionError::Inconsistent(format!("stored rating counts unreadable: {err}")))
        .map(Option::unwrap_or_default)
}

impl Projector for Ratings {
    fn name(&self) -> &'static str {
        "ratings"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW, BY_OPERATOR, COUNTS]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        if e.category() != "session" || e.event_type != "ConversationRated" {
            return vec![];
        }
        let Some(session) = e.stream_id.strip_prefix("session-") else { return vec![] };
        let mut keys = vec![(VIEW, session.to_string()), (BY_OPERATOR, session.to_string())];
        // The channel and operator are fixed by the first rating: a replacement names the same.
        if let Some((channel, operator)) = rated_ids(e) {
            keys.push((COUNTS, channel_key(channel)));
            keys.push((COUNTS, operator_key(operator)));
        }
        keys
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if e.category() != "session" || e.event_type != "ConversationRated" {
            return Ok(());
        }
        let event: SessionEvent = ProjectionError::domain_event(e)?;
        let SessionEvent::ConversationRated { message_id, value, feedback, operator_id, channel_id } = event else {
            return Ok(());
        };
        let session_id: Uuid = e
            .stream_id
            .strip_prefix("session-")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ProjectionError::Inconsistent(format!("{} is not a session stream", e.stream_id)))?;
        let id = session_id.to_string();
        let previous: Option<RatingDoc> = docs
            .get(VIEW, &id)
            .map(|d| serde_json::from_value(d.body.clone()))
            .transpose()
            .map_err(|err| ProjectionError::Inconsistent(format!("stored rating unreadable: {err}")))?;
        for key in [channel_key(channel_id), operator_key(operator_id)] {
            let mut counts = counts_of(docs, &key)?;
            if let Some(p) = &previous {
                counts.count(p.value, true);
            }
            counts.count(value, false);
            docs.put(COUNTS, &key, Draft { partition: String::new(), sort_key: key.clone(), body: body(&counts)? });
        }
        let doc = RatingDoc {
            session_id,
            channel_id,
            operator_id,
            value,
            rating: grade(value).to_string(),
            feedback,
            message_id,
            rated_at: e.recorded_at,
            times_rated: previous.as_ref().map_or(0, |p| p.times_rated) + 1,
        };
        let sort_key = newest_first(doc.rated_at);
        let b = body(&doc)?;
        docs.put(VIEW, &id, Draft { partition: channel_id.to_string(), sort_key: sort_key.clone(), body: b.clone() });
        docs.put(BY_OPERATOR, &id, Draft { partition: operator_id.to_string(), sort_key, body: b });
        Ok(())
    }
}

/// `channel_id`'s ratings (re)given at or after `since`, newest first: reads page by page
/// and stops at the first older one.
pub async fn since(
    views: &dyn ViewStore,
    channel_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<RatingDoc>, StoreError> {
    let partition = channel_id.to_string();
    let mut out = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page =
            views.list(VIEW, Some(&partition), after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 500).await?;
        let Some(last) = page.last() else { return Ok(out) };
        after = Some((last.sort_key.clone(), last.id.clone()));
        for r in crate::read::decode_all::<RatingDoc>(page) {
            if r.rated_at < since {
                return Ok(out);
            }
            out.push(r);
        }
    }
}

/// A channel's rating counts; `None` before its first rating.
pub async fn counts(views: &dyn ViewStore, channel_id: Uuid) -> Result<Option<RatingCounts>, StoreError> {
    crate::read::get(views, COUNTS, &channel_key(channel_id)).await
}

/// A channel's `limit` latest ratings, newest first.
pub async fn latest(views: &dyn ViewStore, channel_id: Uuid, limit: usize) -> Result<Vec<RatingDoc>, StoreError> {
    crate::read::first(views, VIEW, Some(&channel_id.to_string()), limit).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::aggregate::encode;
    use store::Position;

    const SESSION: &str = "session-00000000-0000-0000-0000-000000000063";
    const ADA: Uuid = Uuid::from_u128(1);
    const SHOP: Uuid = Uuid::from_u128(10);

    fn recorded(version: u64, e: &SessionEvent, at: DateTime<Utc>) -> RecordedEvent {
        let (event_type, data) = encode(e);
        RecordedEvent {
            position: Position::START,
            event_id: Uuid::now_v7(),
            stream_id: SESSION.into(),
            stream_version: version,
            event_type,
            schema_version: 1,
            data,
            metadata: serde_json::json!({}),
            recorded_at: at,
        }
    }

    fn rated(n: u128, value: u8, feedback: Option<&str>) -> SessionEvent {
        SessionEvent::ConversationRated {
            message_id: Uuid::from_u128(n),
            value,
            feedback: feedback.map(String::from),
            operator_id: ADA,
            channel_id: SHOP,
        }
    }

    /// Applies events as the runner does: loading the documents `keys` names first.
    fn project(docs: &mut Docs, e: &RecordedEvent) {
        for (view, id) in Ratings.keys(e) {
            if docs.get(view, &id).is_none() {
                docs.load(view, id, None);
            }
        }
        Ratings.apply(e, docs).unwrap();
    }

    fn counts(docs: &Docs, key: &str) -> RatingCounts {
        serde_json::from_value(docs.get(COUNTS, key).unwrap().body.clone()).unwrap()
    }

    #[test]
    fn a_rating_is_listed_per_channel_and_operator_and_counted() {
        let at = Utc::now();
        let mut docs = Docs::default();
        project(&mut docs, &recorded(5, &rated(1, 1, Some("slow")), at));
        let id = "00000000-0000-0000-0000-000000000063";
        let doc = docs.get(VIEW, id).unwrap();
        assert_eq!((doc.partition.as_str(), doc.sort_key.clone()), (SHOP.to_string().as_str(), newest_first(at)));
        assert_eq!(docs.get(BY_OPERATOR, id).unwrap().partition, ADA.to_string());
        let r: RatingDoc = serde_json::from_value(doc.body.clone()).unwrap();
        assert_eq!((r.value, r.rating.as_str(), r.feedback.as_deref(), r.times_rated), (1, "unhappy", Some("slow"), 1));
        let one_unhappy = RatingCounts { unhappy: 1, ..Default::default() };
        assert_eq!(counts(&docs, &channel_key(SHOP)), one_unhappy);
        assert_eq!(counts(&docs, &operator_key(ADA)), one_unhappy);
    }

    #[test]
    fn a_later_rating_replaces_the_earlier_one_in_the_list_and_the_counts() {
        let at = Utc::now();
        let mut docs = Docs::default();
        project(&mut docs, &recorded(5, &rated(1, 1, Some("slow")), at));
        let later = at + chrono::Duration::minutes(3);
        project(&mut docs, &recorded(6, &rated(2, 5, None), later));
        let r: RatingDoc =
            serde_json::from_value(docs.get(VIEW, "00000000-0000-0000-0000-000000000063").unwrap().body.clone())
                .unwrap();
        assert_eq!((r.value, r.feedback, r.rated_at, r.times_rated), (5, None, later, 2));
        let one_happy = RatingCounts { happy: 1, ..Default::default() };
        assert_eq!(counts(&docs, &channel_key(SHOP)), one_happy);
        assert_eq!(counts(&docs, &operator_key(ADA)), one_happy);
    }

    #[test]
    fn other_session_events_touch_nothing() {
        let e = recorded(
            1,
            &SessionEvent::MessagePosted {
                message_id: Uuid::from_u128(1),
                author: domain::session::Party::Visitor,
                text: "hi".into(),
                welcome: false,
            },
            Utc::now(),
        );
        assert!(Ratings.keys(&e).is_empty());
        let mut docs = Docs::default();
        Ratings.apply(&e, &mut docs).unwrap();
        assert!(docs.get(VIEW, "00000000-0000-0000-0000-000000000063").is_none());
    }

    #[test]
    fn grades_follow_odoo() {
        assert_eq!(
            [grade(5), grade(4), grade(3), grade(2), grade(1)],
            ["happy", "happy", "neutral", "unhappy", "unhappy"]
        );
    }
}
