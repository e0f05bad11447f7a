//! Canned responses: create, change, delete, use, and the reads the operators' posts need.
//!
//! A shortcut is claimed on its owner's claim stream before a response takes it (created or
//! renamed) and released after the response lets it go (renamed or deleted), which keeps
//! shortcuts unique per owner. [`with_shortcuts`] is that one sequence.

use std::sync::Mutex;

use domain::canned::{self, CannedError, CannedEvent, CannedResponse, Editor, NewCanned, Shortcut, ShortcutError};
use domain::values::Invalid;
use domain::Aggregate;
use projections::canned::{CannedSummary, SHARED};
use store::StoreError;
use uuid::Uuid;

use crate::users::UserReadError;
use crate::{execute, load, stream_id, App, CommandError, Context, Outcome, StoreOrDecode};

/// Why a canned-response use case did not go through (`api` maps each to a problem document).
#[derive(Debug, thiserror::Error)]
pub enum CannedUseError {
    #[error(transparent)]
    Canned(#[from] CommandError<CannedError>),
    /// The shortcut's claim stream refused it: another response of the owner holds it.
    #[error(transparent)]
    Shortcut(#[from] CommandError<ShortcutError>),
    #[error(transparent)]
    Users(#[from] UserReadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CannedError> for CannedUseError {
    fn from(e: CannedError) -> Self {
        CannedUseError::Canned(CommandError::Domain(e))
    }
}

impl From<StoreOrDecode> for CannedUseError {
    fn from(e: StoreOrDecode) -> Self {
        CannedUseError::Canned(e.into())
    }
}

/// Changes to a response: absent fields keep their value.
#[derive(Clone, Debug, Default)]
pub struct CannedChange {
    pub shortcut: Option<String>,
    pub text: Option<String>,
    pub shared: Option<bool>,
}

/// A live canned response as stored now, with its version; `NotFound` if there is none.
pub async fn current(app: &App, id: Uuid) -> Result<(CannedResponse, u64), CannedUseError> {
    let loaded = load::<CannedResponse>(app.events.as_ref(), &stream_id::<CannedResponse>(id)).await?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok((loaded.state, v)),
        _ => Err(CannedError::NotFound.into()),
    }
}

fn claim_stream(owner: Uuid, shortcut: &str) -> String {
    stream_id::<Shortcut>(canned::claim_stream_key(owner, shortcut))
}

async fn claim(app: &App, ctx: &Context, owner: Uuid, shortcut: &str, id: Uuid) -> Result<(), CannedUseError> {
    execute::<Shortcut, _>(app.events.as_ref(), &claim_stream(owner, shortcut), ctx, None, |s| canned::claim(s, id))
        .await?;
    Ok(())
}

async fn release(app: &App, ctx: &Context, owner: Uuid, shortcut: &str, id: Uuid) -> Result<(), CannedUseError> {
    execute::<Shortcut, _>(app.events.as_ref(), &claim_stream(owner, shortcut), ctx, None, |s| canned::release(s, id))
        .await?;
    Ok(())
}

/// Runs a decision on a response; the outcome and the response before and after it (as
/// stored, for a retried request that decided nothing).
async fn write(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    decide: impl Fn(&CannedResponse) -> Result<Vec<CannedEvent>, CannedError>,
) -> Result<(Outcome, CannedResponse, CannedResponse), CannedUseError> {
    let decided: Mutex<Option<(CannedResponse, CannedResponse)>> = Mutex::new(None);
    let stream = stream_id::<CannedResponse>(id);
    let outcome = execute::<CannedResponse, CannedError>(app.events.as_ref(), &stream, ctx, expected, |c| {
        let events = decide(c)?;
        let mut after = c.clone();
        events.iter().for_each(|e| after.apply(e));
        *decided.lock().unwrap_or_else(|p| p.into_inner()) = Some((c.clone(), after));
        Ok(events)
    })
    .await?;
    let (before, after) = match decided.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(pair) => pair,
        None => {
            let loaded = load::<CannedResponse>(app.events.as_ref(), &stream).await?;
            (loaded.state.clone(), loaded.state)
        }
    };
    Ok((outcome, before, after))
}

/// The one shortcut sequence around a write of response `id`: claim `taking` (owner,
/// shortcut) first, give it back if the write is refused, and release the response's old
/// shortcut when `lets_go(before, after)` says the write let it go.
async fn with_shortcuts(
    app: &App,
    ctx: &Context,
    id: Uuid,
    taking: Option<(Uuid, &str)>,
    expected: Option<u64>,
    decide: impl Fn(&CannedResponse) -> Result<Vec<CannedEvent>, CannedError>,
    lets_go: impl Fn(&CannedResponse, &CannedResponse) -> bool,
) -> Result<(Outcome, CannedResponse), CannedUseError> {
    if let Some((owner, sc)) = taking {
        claim(app, ctx, owner, sc, id).await?;
    }
    let (outcome, before, after) = match write(app, ctx, id, expected, decide).await {
        Ok(done) => done,
        Err(e) => {
            if let Some((owner, sc)) = taking {
                release(app, ctx, owner, sc, id).await?;
            }
            return Err(e);
        }
    };
    if lets_go(&before, &after) {
        release(app, ctx, before.owner_id, &before.shortcut, id).await?;
    }
    Ok((outcome, after))
}

/// Creates a response for `new.owner_id`; its shortcut is claimed first.
pub async fn create(
    app: &App,
    ctx: &Context,
    by: Editor,
    new: &NewCanned,
) -> Result<(Outcome, CannedResponse), CannedUseError> {
    // Refuse bad input and forbidden requests before claiming anything.
    canned::create(&CannedResponse::default(), by, new)?;
    if new.owner_id != by.user_id {
        let u = app.users.get(app.events.as_ref(), new.owner_id).await?;
        if !u.exists() || !u.active {
            return Err(CannedError::Invalid(vec![Invalid::new("owner_id", "is not an active user")]).into());
        }
    }
    let sc = canned::shortcut(&new.shortcut).map_err(|e| CannedError::Invalid(vec![e]))?;
    let id = new.canned_id;
    // A retry (same Idempotency-Key) whose response exists answers as the first request
    // did, whatever its body: it must not claim another shortcut on the way.
    let exists = load::<CannedResponse>(app.events.as_ref(), &stream_id::<CannedResponse>(id)).await?.state.exists();
    let taking = (!exists).then_some((new.owner_id, sc.as_str()));
    with_shortcuts(app, ctx, id, taking, None, |c| canned::create(c, by, new), |_, _| false).await
}

/// Changes response `id` (`expected`: the `If-Match` version); a new shortcut is claimed
/// before it is taken and the old one released after.
pub async fn update(
    app: &App,
    ctx: &Context,
    by: Editor,
    id: Uuid,
    expected: Option<u64>,
    change: &CannedChange,
) -> Result<(Outcome, CannedResponse), CannedUseError> {
    let (now, version) = current(app, id).await?;
    // A stale edit is refused before a new shortcut is claimed (and given back).
    if expected.is_some_and(|e| e != version) {
        return Err(CommandError::<CannedError>::Conflict { current: Some(version) }.into());
    }
    let decide = |c: &CannedResponse| -> Result<Vec<CannedEvent>, CannedError> {
        let mut events = canned::edit(c, by, change.shortcut.as_deref(), change.text.as_deref())?;
        if let Some(shared) = change.shared {
            let mut after = c.clone();
            events.iter().for_each(|e| after.apply(e));
            events.extend(canned::set_shared(&after, by, shared)?);
        }
        Ok(events)
    };
    // Refuse bad input and forbidden requests before claiming anything.
    decide(&now)?;
    let renamed_to = match change.shortcut.as_deref().map(canned::shortcut).transpose() {
        Ok(Some(sc)) if sc != now.shortcut => Some(sc),
        Ok(_) => None,
        Err(e) => return Err(CannedError::Invalid(vec![e]).into()),
    };
    let taking = renamed_to.as_deref().map(|sc| (now.owner_id, sc));
    with_shortcuts(app, ctx, id, taking, expected, decide, |before, after| before.shortcut != after.shortcut).await
}

/// Deletes response `id`; its shortcut is free again.
pub async fn delete(
    app: &App,
    ctx: &Context,
    by: Editor,
    id: Uuid,
    expected: Option<u64>,
) -> Result<Outcome, CannedUseError> {
    let (outcome, _) = with_shortcuts(app, ctx, id, None, expected, |c| canned::delete(c, by), |_, _| true).await?;
    Ok(outcome)
}

/// The response `user` may post with this id: their own or a shared one.
pub async fn usable(app: &App, user: Uuid, id: Uuid) -> Result<Option<CannedResponse>, CannedUseError> {
    let loaded = load::<CannedResponse>(app.events.as_ref(), &stream_id::<CannedResponse>(id)).await?;
    Ok(Some(loaded.state).filter(|c| c.usable_by(user)))
}

/// The response `:shortcut` names for `user`: their own (from its claim stream, always
/// current), else a shared one (from the view).
pub async fn by_shortcut(app: &App, user: Uuid, typed: &str) -> Result<Option<CannedResponse>, CannedUseError> {
    let Ok(sc) = canned::shortcut(typed) else { return Ok(None) };
    let claim = load::<Shortcut>(app.events.as_ref(), &claim_stream(user, &sc)).await?;
    if let Some(id) = claim.state.holder {
        if let Some(c) = usable(app, user, id).await? {
            return Ok(Some(c));
        }
    }
    let shared = projections::canned::of_partition(app.views.as_ref(), SHARED).await?;
    // The view's sort key is the shortcut.
    for summary in shared.into_iter().filter(|s| s.shortcut == sc) {
        if let Some(c) = usable(app, user, summary.canned_response_id).await? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Counts a use of a response in a conversation (after the message is written).
pub async fn count_use(
    app: &App,
    ctx: &Context,
    id: Uuid,
    by: Uuid,
    session_id: Uuid,
) -> Result<Outcome, CannedUseError> {
    let at = ctx.now;
    let stream = stream_id::<CannedResponse>(id);
    Ok(execute::<CannedResponse, CannedError>(app.events.as_ref(), &stream, ctx, None, |c| {
        canned::use_in(c, by, session_id, at)
    })
    .await?)
}

fn by_use(a: &CannedSummary, b: &CannedSummary) -> std::cmp::Ordering {
    b.use_count.cmp(&a.use_count).then(b.last_used_at.cmp(&a.last_used_at)).then(a.shortcut.cmp(&b.shortcut))
}

/// `user`'s own and the shared responses whose shortcut starts with `prefix`, most used
/// first (then most recently used, then by shortcut).
pub async fn suggestions(app: &App, user: Uuid, prefix: &str) -> Result<Vec<CannedSummary>, CannedUseError> {
    let mut docs = projections::canned::of_partition(app.views.as_ref(), &user.to_string()).await?;
    docs.extend(projections::canned::of_partition(app.views.as_ref(), SHARED).await?);
    Ok(sorted(docs, prefix))
}

/// Everyone's responses whose shortcut starts with `prefix`, in the same order.
pub async fn everyones(app: &App, prefix: &str) -> Result<Vec<CannedSummary>, CannedUseError> {
    Ok(sorted(projections::canned::all(app.views.as_ref()).await?, prefix))
}

fn sorted(docs: Vec<CannedSummary>, prefix: &str) -> Vec<CannedSummary> {
    let mut out: Vec<CannedSummary> = docs.into_iter().filter(|c| c.shortcut.starts_with(prefix)).collect();
    out.sort_by(by_use);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;

    fn app() -> App {
        let events = Arc::new(store::memory::MemoryEventStore::default());
        let views = Arc::new(store::memory_views::MemoryViewStore::default());
        App::new(events, views, crate::Config::default())
    }

    async fn holder(app: &App, owner: Uuid, sc: &str) -> Option<Uuid> {
        load::<Shortcut>(app.events.as_ref(), &claim_stream(owner, sc)).await.unwrap().state.holder
    }

    /// Each request its own context (a shared one would make every write a retry of the first).
    fn ctx() -> Context {
        Context::new(domain::metadata::Actor::system(), Utc::now())
    }

    fn new(id: Uuid, owner: Uuid, sc: &str) -> NewCanned {
        NewCanned { canned_id: id, owner_id: owner, shortcut: sc.into(), text: "Hello!".into(), shared: false }
    }

    #[tokio::test]
    async fn shortcuts_are_claimed_before_they_are_taken_and_released_when_let_go() {
        let app = app();
        let ada = Uuid::now_v7();
        let by = Editor { user_id: ada, admin: false };
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());

        create(&app, &ctx(), by, &new(first, ada, "hello")).await.unwrap();
        assert_eq!(holder(&app, ada, "hello").await, Some(first));
        let taken = create(&app, &ctx(), by, &new(second, ada, "Hello")).await.unwrap_err();
        assert!(matches!(taken, CannedUseError::Shortcut(CommandError::Domain(_))), "{taken:?}");
        assert_eq!(holder(&app, ada, "hello").await, Some(first), "a refused claim leaves the holder");

        let rename = CannedChange { shortcut: Some("hi".into()), ..Default::default() };
        update(&app, &ctx(), by, first, None, &rename).await.unwrap();
        assert_eq!(holder(&app, ada, "hi").await, Some(first));
        assert_eq!(holder(&app, ada, "hello").await, None, "a rename releases the old shortcut");

        // A stale edit is refused before the new shortcut is claimed.
        let stale = CannedChange { shortcut: Some("hey".into()), ..Default::default() };
        let conflict = update(&app, &ctx(), by, first, Some(0), &stale).await.unwrap_err();
        assert!(matches!(conflict, CannedUseError::Canned(CommandError::Conflict { .. })), "{conflict:?}");
        assert_eq!(holder(&app, ada, "hey").await, None);

        delete(&app, &ctx(), by, first, None).await.unwrap();
        assert_eq!(holder(&app, ada, "hi").await, None, "a deletion releases its shortcut");
        create(&app, &ctx(), by, &new(second, ada, "hi")).await.unwrap();
        assert_eq!(holder(&app, ada, "hi").await, Some(second));
    }

    #[tokio::test]
    async fn a_refused_write_gives_the_new_claim_back() {
        let app = app();
        let ada = Uuid::now_v7();
        let id = Uuid::now_v7();
        let write_refused =
            with_shortcuts(&app, &ctx(), id, Some((ada, "hello")), None, |_| Err(CannedError::NotFound), |_, _| true)
                .await;
        assert!(write_refused.is_err());
        assert_eq!(holder(&app, ada, "hello").await, None, "the claim is given back");
    }
}
