//! An operator's slots and the one assignment sequence: claim the slot on the operator's
//! stream, write the conversation, give the slot back when the write fails.

use std::future::Future;

use chrono::{DateTime, Utc};
use domain::session::SessionStatus;
use domain::user::{claim_slot, release_slot, stale_reason, ReleaseReason, User, UserError, UserEvent};
use uuid::Uuid;

use super::lookup::current_session;
use super::ConversationError;
use crate::{execute, stream_id, App, CommandError, Context};

/// Whether the operator's claims, stale ones included, reach `max`.
pub(super) fn may_be_full(u: &User, max: Option<u32>) -> bool {
    max.is_some_and(|m| u.open_conversations.len() as u32 >= m)
}

/// How long a claim not (yet) named by its conversation still counts.
fn claim_bound(app: &App) -> chrono::Duration {
    chrono::Duration::from_std(app.config.claim_timeout).unwrap_or(chrono::Duration::seconds(10))
}

/// The claims of `operator` (state `u`) that hold no slot any more at `now`, with why: their
/// conversation is closed, or does not name them `claim_timeout` after the claim (see
/// `domain::user::stale_reason`). Each is checked against its conversation's stream.
pub async fn stale_claims(
    app: &App,
    operator: Uuid,
    u: &User,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, ReleaseReason)>, ConversationError> {
    let bound = claim_bound(app);
    let mut out = Vec::new();
    for claim in &u.open_conversations {
        let conversation = current_session(app, claim.session_id).await?;
        if let Some(reason) = stale_reason(claim, operator, conversation.as_ref(), now, bound) {
            out.push((claim.session_id, reason));
        }
    }
    Ok(out)
}

/// What a claim did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// This call took the slot: a path that then loses gives it back ([`give_back`]).
    Took,
    /// The operator already held it (another path for the same conversation is in flight):
    /// not this call's to give back.
    Held,
    /// The operator is at their maximum, or deactivated.
    Full,
}

/// Takes a slot on the operator's stream for `session_id`. Stale claims are freed in the same
/// append (reason given) and never count against `max`.
pub async fn claim(
    app: &App,
    ctx: &Context,
    operator: Uuid,
    session_id: Uuid,
    max: Option<u32>,
) -> Result<Claimed, ConversationError> {
    let u = app.users.get(app.events.as_ref(), operator).await?;
    // Stale claims matter here only against a maximum (the sweeper frees the others), and
    // for this very conversation (a stale claim for it is taken anew, to count again).
    let stale = match may_be_full(&u, max) || u.holds(session_id) {
        true => stale_claims(app, operator, &u, ctx.now).await?,
        false => vec![],
    };
    let took = std::sync::atomic::AtomicBool::new(false);
    let result = execute::<User, _>(app.events.as_ref(), &stream_id::<User>(operator), ctx, None, |u| {
        let events = claim_slot(u, session_id, ctx.now, max, &stale)?;
        // The last decision is the one written.
        let assigned = events.iter().any(|e| matches!(e, UserEvent::ConversationAssigned { .. }));
        took.store(assigned, std::sync::atomic::Ordering::Relaxed);
        Ok(events)
    })
    .await;
    match result {
        Ok(_) if took.load(std::sync::atomic::Ordering::Relaxed) => Ok(Claimed::Took),
        Ok(_) => Ok(Claimed::Held),
        Err(CommandError::Domain(UserError::AtCapacity)) | Err(CommandError::Domain(UserError::Deactivated)) => {
            Ok(Claimed::Full)
        }
        Err(e) => Err(e.into()),
    }
}

/// Frees the operator's slot for `session_id`.
pub async fn release(app: &App, ctx: &Context, operator: Uuid, session_id: Uuid) -> Result<(), ConversationError> {
    execute::<User, _>(app.events.as_ref(), &stream_id::<User>(operator), ctx, None, |u| release_slot(u, session_id))
        .await?;
    Ok(())
}

/// After a path that claimed a slot failed to write the conversation: gives the slot back
/// only if this path took it (`Took`), and not if the conversation is now the operator's
/// anyway (another path for it won with this very claim: the claim is confirmed). A path
/// never frees a slot it did not take; one it took and that confirms nothing is freed here
/// or, if this fails, by the sweeper after `claim_timeout`.
pub async fn give_back(
    app: &App,
    ctx: &Context,
    operator: Uuid,
    session_id: Uuid,
    claimed: Claimed,
) -> Result<(), ConversationError> {
    if claimed != Claimed::Took {
        return Ok(());
    }
    let confirmed = current_session(app, session_id)
        .await?
        .is_some_and(|s| s.status != SessionStatus::Closed && s.operator == Some(operator));
    if confirmed {
        return Ok(());
    }
    release(app, ctx, operator, session_id).await
}

/// An operator with a slot claimed for a conversation.
#[derive(Clone, Debug)]
pub struct Slot {
    pub operator: Uuid,
    /// The name visitors see.
    pub name: String,
    pub claimed: Claimed,
}

impl Slot {
    /// The operator and their name, as a conversation's assignment takes them.
    pub fn assignee(&self) -> (Uuid, String) {
        (self.operator, self.name.clone())
    }
}

/// Claims a slot of `operator` (shown as `name`) for `session_id`; `full` when they are at
/// their maximum.
pub async fn claim_for(
    app: &App,
    ctx: &Context,
    operator: Uuid,
    name: String,
    session_id: Uuid,
    max: Option<u32>,
    full: ConversationError,
) -> Result<Slot, ConversationError> {
    match claim(app, ctx, operator, session_id, max).await? {
        Claimed::Full => Err(full),
        claimed => Ok(Slot { operator, name, claimed }),
    }
}

/// The assignment sequence after the claim: runs `write` (the conversation's command naming
/// `slot`'s operator) and gives the slot back when it fails, or when `kept` says what it
/// wrote is not the operator's. The outer error is the give-back's, the inner result the
/// write's.
pub async fn assign<T, E>(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    slot: Option<&Slot>,
    write: impl Future<Output = Result<T, E>>,
    kept: impl FnOnce(&T, Uuid) -> bool,
) -> Result<Result<T, E>, ConversationError> {
    let written = write.await;
    if let Some(slot) = slot {
        if !matches!(&written, Ok(t) if kept(t, slot.operator)) {
            give_back(app, ctx, slot.operator, session_id, slot.claimed).await?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::session::SessionError;
    use domain::user::{create, Profile, Role};
    use domain::values::Email;

    use super::*;

    async fn app_with_operator() -> (App, Uuid, Context) {
        let events = Arc::new(store::memory::MemoryEventStore::default());
        let views = Arc::new(store::memory_views::MemoryViewStore::default());
        let app = App::new(events, views, crate::Config::default());
        let ctx = Context::new(domain::metadata::Actor::system(), Utc::now());
        let ada = Uuid::now_v7();
        let login = Email::parse("login", "ada@example.com").unwrap();
        let profile = Profile { name: "Ada".into(), chat_name: None, languages: vec![], country: None };
        execute::<User, _>(app.events.as_ref(), &stream_id::<User>(ada), &ctx, None, |u| {
            create(u, ada, login.clone(), profile.clone(), Role::Operator, "x".into())
        })
        .await
        .unwrap();
        (app, ada, ctx)
    }

    #[tokio::test]
    async fn the_assignment_gives_the_slot_back_unless_the_write_keeps_it() {
        let (app, ada, ctx) = app_with_operator().await;
        let holds = |id| {
            let app = app.clone();
            async move { app.users.get(app.events.as_ref(), ada).await.unwrap().holds(id) }
        };
        let full = || ConversationError::AtCapacity;

        let refused = Uuid::now_v7();
        let slot = claim_for(&app, &ctx, ada, "Ada".into(), refused, None, full()).await.unwrap();
        assert_eq!(slot.claimed, Claimed::Took);
        let write = async { Err::<(), _>(SessionError::Closed) };
        assert!(assign(&app, &ctx, refused, Some(&slot), write, |_, _| true).await.unwrap().is_err());
        assert!(!holds(refused).await, "a refused write gives the slot back");

        let elsewhere = Uuid::now_v7();
        let slot = claim_for(&app, &ctx, ada, "Ada".into(), elsewhere, None, full()).await.unwrap();
        let write = async { Ok::<_, SessionError>(()) };
        assert!(assign(&app, &ctx, elsewhere, Some(&slot), write, |_, _| false).await.unwrap().is_ok());
        assert!(!holds(elsewhere).await, "a write that names someone else gives it back");

        let kept = Uuid::now_v7();
        let slot = claim_for(&app, &ctx, ada, "Ada".into(), kept, Some(1), full()).await.unwrap();
        let write = async { Ok::<_, SessionError>(()) };
        assert!(assign(&app, &ctx, kept, Some(&slot), write, |_, _| true).await.unwrap().is_ok());
        assert!(holds(kept).await, "a write that keeps it holds the slot");

        let over = claim_for(&app, &ctx, ada, "Ada".into(), Uuid::now_v7(), Some(1), full()).await;
        assert!(matches!(over, Err(ConversationError::AtCapacity)), "{over:?}");
    }
}
