//! Presence across channels: leaving every channel at once, and the sweeper, which takes
//! operators offline after a while without activity and runs the conversations' own passes
//! (stale slots, abandoned conversations, the queues).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::channel::{ChannelError, LeaveReason};
use domain::metadata::Actor;
use domain::user::{set_status, Status, StatusReason, User, UserError};
use store::StoreError;
use tokio::time::Instant;
use uuid::Uuid;

use crate::conversations::{abandon_idle, active_channels, dispatch, release_stale_claims};
use crate::worker::{run_owned, Schedule, Shutdown};
use crate::{execute, stream_id, App, CommandError, Context};

/// How often the sweeper's presence pass runs (`livechat serve`).
pub const PRESENCE_EVERY: Duration = Duration::from_secs(30);

/// The sweeper's lease: one node at a time runs it.
const OWNER: &str = "presence_sweeper";

/// Why leaving channels or going offline did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Channel(#[from] CommandError<ChannelError>),
    #[error(transparent)]
    User(#[from] CommandError<UserError>),
}

/// One pass of the inactivity rule: every operator who is joined somewhere or not offline,
/// and whose last activity is older than `config.inactivity`, leaves their channels (reason
/// `inactive`) and goes offline. Returns who was taken offline.
pub async fn sweep(app: &App) -> Result<Vec<Uuid>, PresenceError> {
    let now = app.clock.now();
    let limit = chrono::Duration::from_std(app.config.inactivity).unwrap_or(chrono::Duration::minutes(30));
    let mut candidates: Vec<Uuid> = Vec::new();
    for doc in active_channels(app).await? {
        for u in doc.joined {
            if !candidates.contains(&u) {
                candidates.push(u);
            }
        }
    }
    for u in projections::users::all(app.views.as_ref()).await? {
        if u.active && u.status != Status::Offline && !candidates.contains(&u.user_id) {
            candidates.push(u.user_id);
        }
    }
    let mut gone = Vec::new();
    for user_id in candidates {
        let last = app.views.last_touched(&stream_id::<User>(user_id)).await?;
        if last.is_some_and(|t| now - t <= limit) {
            continue;
        }
        let ctx = Context::new(Actor::system(), now);
        crate::channels::leave_all(app, &ctx, user_id, LeaveReason::Inactive).await?;
        execute::<User, _>(app.events.as_ref(), &stream_id::<User>(user_id), &ctx, None, |u| {
            if u.exists() && u.active {
                set_status(u, Status::Offline, StatusReason::Inactive)
            } else {
                Ok(vec![])
            }
        })
        .await?;
        tracing::info!(%user_id, "operator inactive: left their channels and went offline");
        gone.push(user_id);
    }
    Ok(gone)
}

/// Runs [`sweep`] (and abandons idle conversations, and routes the queues) every `every`,
/// and frees stale conversation slots every quarter of `claim_timeout` (at most `every`), on
/// the one node that owns the sweeper, until `shutdown`.
pub async fn run_sweeper(app: App, every: Duration, shutdown: Shutdown) {
    // A leaked slot is freed within seconds of the bound, not of the presence period.
    let claims_every = (app.config.claim_timeout / 4).max(Duration::from_millis(250)).min(every);
    let presence_due = Arc::new(Mutex::new(Instant::now()));
    let schedule = Schedule { every: claims_every, retry: every };
    run_owned(&app, OWNER, schedule, shutdown, || {
        let (app, presence_due) = (app.clone(), presence_due.clone());
        async move {
            let due = *presence_due.lock().unwrap_or_else(|p| p.into_inner());
            if Instant::now() >= due {
                presence_pass(&app).await;
                *presence_due.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + every;
            }
            if let Err(e) = release_stale_claims(&app).await {
                tracing::warn!(error = %e, "freeing stale conversation slots failed");
            }
        }
    })
    .await;
}

/// The inactivity rule, abandoned conversations, then the queues.
async fn presence_pass(app: &App) {
    if let Err(e) = sweep(app).await {
        tracing::warn!(error = %e, "presence sweep failed");
    }
    if let Err(e) = abandon_idle(app).await {
        tracing::warn!(error = %e, "abandoning idle conversations failed");
    }
    // Queues whose conversations a live update missed get routed here.
    let ctx = Context::new(Actor::system(), app.clock.now());
    if let Ok(channels) = active_channels(app).await {
        for c in channels.iter().filter(|c| !c.joined.is_empty()) {
            if let Err(e) = dispatch(app, &ctx, c.channel_id).await {
                tracing::warn!(error = %e, channel = %c.channel_id, "queue dispatch failed");
            }
        }
    }
}
