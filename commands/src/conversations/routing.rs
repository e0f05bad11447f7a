//! Choosing the operator of a conversation: the channel's candidates and their load, then
//! the first of them (by `domain::routing::choose`) whose slot can be claimed.

use chrono::{DateTime, Utc};
use domain::channel::Channel;
use domain::routing::{choose, Candidate, Visitor};
use domain::session::SessionStatus;
use domain::user::Status;
use uuid::Uuid;

use super::assignment::{claim, may_be_full, stale_claims, Claimed, Slot};
use super::ConversationError;
use crate::{App, Context};

/// The joined, online, active operators of a channel with their load.
pub async fn candidates(app: &App, c: &Channel, now: DateTime<Utc>) -> Result<Vec<Candidate>, ConversationError> {
    let max = c.options.max_conversations_per_operator;
    let mut out = Vec::new();
    for &user_id in &c.joined {
        let u = app.users.get(app.events.as_ref(), user_id).await?;
        if !u.active || u.status != Status::Online {
            continue;
        }
        let recent = recent_conversations(app, user_id, now).await?;
        let mut open = u.open_conversations.len();
        // The load only decides against a maximum: the claims are checked when they reach it.
        if may_be_full(&u, max) {
            open -= stale_claims(app, user_id, &u, now).await?.len();
        }
        out.push(Candidate {
            user_id,
            languages: u.languages.clone(),
            country: u.country.clone(),
            active_conversations: recent,
            open_conversations: open as u32,
            last_assigned_at: u.last_assigned_at,
        });
    }
    Ok(out)
}

/// Odoo's "active" count: conversations open, or with a message in the last 30 minutes.
async fn recent_conversations(app: &App, operator: Uuid, now: DateTime<Utc>) -> Result<u32, ConversationError> {
    let since = now - chrono::Duration::minutes(30);
    // Newest activity first: stop at the first conversation older than the window.
    let page = projections::conversations::inbox(app.views.as_ref(), operator, 200).await?;
    let mut n = 0;
    for c in page {
        if c.status != SessionStatus::Closed || c.last_activity_at >= since {
            n += 1;
        } else {
            break;
        }
    }
    Ok(n)
}

/// Routes to an operator with a free slot, trying the next best when one fills up meanwhile.
/// Returns the operator with their slot, or `None` when nobody is available.
pub async fn route(
    app: &App,
    ctx: &Context,
    c: &Channel,
    visitor: &Visitor,
    session_id: Uuid,
) -> Result<Option<Slot>, ConversationError> {
    let max = c.options.max_conversations_per_operator;
    let mut pool = candidates(app, c, ctx.now).await?;
    while let Some(chosen) = choose(&pool, visitor, max) {
        let claimed = claim(app, ctx, chosen, session_id, max).await?;
        if claimed != Claimed::Full {
            let u = app.users.get(app.events.as_ref(), chosen).await?;
            return Ok(Some(Slot { operator: chosen, name: u.display_name().to_string(), claimed }));
        }
        pool.retain(|p| p.user_id != chosen);
    }
    Ok(None)
}
