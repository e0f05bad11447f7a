//! Presence across channels: leaving every channel at once, and the inactivity rule that
//! takes operators offline after a while without activity.

use commands::conversations::{active_channels, channels_of};
use commands::{execute, stream_id, Context};
use domain::channel::{leave, Channel, LeaveReason};
use domain::metadata::Actor;
use domain::user::{set_status, Status, StatusReason, User};
use uuid::Uuid;

use crate::commanding::refused;
use crate::problem::Problem;
use crate::AppState;

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

/// One pass of the inactivity rule: every operator who is joined somewhere or not offline,
/// and whose last activity is older than `config.inactivity`, leaves their channels (reason
/// `inactive`) and goes offline. Returns who was taken offline.
pub async fn sweep(state: &AppState) -> Result<Vec<Uuid>, Problem> {
    let now = state.clock.now();
    let limit = chrono::Duration::from_std(state.config.inactivity).unwrap_or(chrono::Duration::minutes(30));
    let mut candidates: Vec<Uuid> = Vec::new();
    for doc in active_channels(state).await? {
        for u in doc.joined {
            if !candidates.contains(&u) {
                candidates.push(u);
            }
        }
    }
    for d in store::views::list_all(state.views.as_ref(), projections::users::VIEW, None).await? {
        if let Ok(u) = serde_json::from_value::<projections::users::UserSummary>(d.body) {
            if u.active && u.status != Status::Offline && !candidates.contains(&u.user_id) {
                candidates.push(u.user_id);
            }
        }
    }
    let mut gone = Vec::new();
    for user_id in candidates {
        let last = state.views.last_touched(&stream_id::<User>(user_id)).await?;
        if last.is_some_and(|t| now - t <= limit) {
            continue;
        }
        let ctx = Context::new(Actor::system(), now);
        leave_all(state, &ctx, user_id, LeaveReason::Inactive).await?;
        execute::<User, _>(state.events.as_ref(), &stream_id::<User>(user_id), &ctx, None, |u| {
            if u.exists() && u.active {
                set_status(u, Status::Offline, StatusReason::Inactive)
            } else {
                Ok(vec![])
            }
        })
        .await
        .map_err(refused)?;
        tracing::info!(%user_id, "operator inactive: left their channels and went offline");
        gone.push(user_id);
    }
    Ok(gone)
}

/// Runs [`sweep`] (and abandons idle conversations, and routes the queues) every `every`,
/// and frees stale conversation slots every quarter of `claim_timeout` (at most `every`), on
/// the one node that owns the sweeper, until `shutdown`.
pub async fn run_sweeper(
    state: AppState,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    const OWNER: &str = "presence_sweeper";
    // A leaked slot is freed within seconds of the bound, not of the presence period.
    let claims_every = (state.config.claim_timeout / 4).max(std::time::Duration::from_millis(250)).min(every);
    while !*shutdown.borrow() {
        match state.views.try_own(OWNER).await {
            Ok(Some(ownership)) => {
                let mut presence_due = tokio::time::Instant::now();
                while !*shutdown.borrow() && ownership.is_alive() {
                    if tokio::time::Instant::now() >= presence_due {
                        presence_pass(&state).await;
                        presence_due = tokio::time::Instant::now() + every;
                    }
                    if let Err(e) = commands::conversations::release_stale_claims(&state).await {
                        tracing::warn!(error = %e, "freeing stale conversation slots failed");
                    }
                    let _ = tokio::time::timeout(claims_every, shutdown.changed()).await;
                }
            }
            Ok(None) => {
                let _ = tokio::time::timeout(every, shutdown.changed()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot own the presence sweeper");
                let _ = tokio::time::timeout(every, shutdown.changed()).await;
            }
        }
    }
}

/// The inactivity rule, abandoned conversations, then the queues.
async fn presence_pass(state: &AppState) {
    if let Err(e) = sweep(state).await {
        tracing::warn!(error = %e.detail, "presence sweep failed");
    }
    if let Err(e) = commands::conversations::abandon_idle(state).await {
        tracing::warn!(error = %e, "abandoning idle conversations failed");
    }
    // Queues whose conversations a live update missed get routed here.
    let ctx = Context::new(Actor::system(), state.clock.now());
    if let Ok(channels) = active_channels(state).await {
        for c in channels.iter().filter(|c| !c.joined.is_empty()) {
            if let Err(e) = commands::conversations::dispatch(state, &ctx, c.channel_id).await {
                tracing::warn!(error = %e, channel = %c.channel_id, "queue dispatch failed");
            }
        }
    }
}
