//! Presence across channels: making an operator leave every channel they joined.

use commands::{execute, stream_id, Context};
use domain::channel::{leave, Channel, LeaveReason};
use projections::channels::{ChannelDoc, ACTIVE, VIEW};
use uuid::Uuid;

use crate::commanding::refused;
use crate::problem::Problem;
use crate::AppState;

/// The channels (by the view) where `user_id` is an operator.
pub async fn channels_of(state: &AppState, user_id: Uuid) -> Result<Vec<ChannelDoc>, Problem> {
    let mut found = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page =
            state.views.list(VIEW, Some(ACTIVE), after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.sort_key.clone(), last.id.clone()));
        for d in page {
            let doc: ChannelDoc = match serde_json::from_value(d.body) {
                Ok(doc) => doc,
                Err(e) => {
                    tracing::error!(error = %e, id = %d.id, "unreadable channel document");
                    continue;
                }
            };
            if doc.operators.contains(&user_id) || doc.joined.contains(&user_id) {
                found.push(doc);
            }
        }
    }
    Ok(found)
}

/// Makes `user_id` leave every channel they are joined to, with `reason`.
pub async fn leave_all(state: &AppState, ctx: &Context, user_id: Uuid, reason: LeaveReason) -> Result<(), Problem> {
    for doc in channels_of(state, user_id).await? {
        execute::<Channel, _>(state.events.as_ref(), &stream_id::<Channel>(doc.channel_id), ctx, None, |c| {
            leave(c, user_id, reason)
        })
        .await
        .map_err(refused)?;
    }
    Ok(())
}
