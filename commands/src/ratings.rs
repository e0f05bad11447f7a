//! Conversation ratings: the visitor's rating (a session command: it shows as a system message
//! and replaces an earlier rating) and the channel's satisfaction over recent ratings.

use chrono::{DateTime, Duration, Utc};
use domain::session::{self, Party, Session};
use store::StoreError;
use uuid::Uuid;

use crate::conversations::{self as conversation, ConversationError};
use crate::{App, Context, Outcome};

/// Odoo's `_rating_satisfaction_days`: the satisfaction counts ratings this recent.
pub const SATISFACTION_DAYS: i64 = 14;

/// The visitor rates conversation `session_id`, open or closed; the outcome and the session
/// after it.
pub async fn rate(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    value: i64,
    feedback: Option<&str>,
    message_id: Uuid,
) -> Result<(Outcome, Session), ConversationError> {
    conversation::decide_on_session(app, ctx, session_id, |s| {
        session::rate(s, Party::Visitor, value, feedback, message_id)
    })
    .await
}

/// Odoo's `rating_percentage_satisfaction` of a channel at `now`: happy ratings × 100 over
/// the ratings (re)given in the last 14 days, rounded; `None` when there are none (Odoo: -1).
pub async fn satisfaction(app: &App, channel_id: Uuid, now: DateTime<Utc>) -> Result<Option<u8>, StoreError> {
    let since = now - Duration::days(SATISFACTION_DAYS);
    let recent = projections::ratings::since(app.views.as_ref(), channel_id, since).await?;
    let happy = recent.iter().filter(|r| r.rating == "happy").count() as u64;
    Ok(percent(happy, recent.len() as u64))
}

/// `part` of `total` in whole percent, rounded half up; `None` for nothing.
fn percent(part: u64, total: u64) -> Option<u8> {
    (total > 0).then(|| ((part * 200 + total) / (total * 2)) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfaction_is_rounded_and_absent_without_ratings() {
        assert_eq!(percent(0, 0), None);
        assert_eq!(percent(1, 3), Some(33));
        assert_eq!(percent(2, 3), Some(67));
        assert_eq!(percent(1, 2), Some(50));
        assert_eq!(percent(3, 3), Some(100));
    }
}
