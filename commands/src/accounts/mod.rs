//! Accounts: creating users, their profile, role, password, status and activation, and
//! logging in (a token per login). What `api`'s users and auth routes and `livechat user`
//! run; authorization (who may call what) stays with the caller, the rules that depend on
//! who acts (no self-demotion, no self-deactivation) are here.

mod input;
mod login;
pub mod secrets;

use std::sync::Mutex;

use domain::channel::{self, Channel, ChannelError, LeaveReason};
use domain::user::{self, claim_login, Login, LoginError, Role, Status, StatusReason, User, UserError, UserEvent};
use domain::values::{Email, Invalid};
use domain::Aggregate;
use projections::users::UserSummary;
use store::{Direction, EventFilter, Position, ReadAll, StoreError};
use uuid::Uuid;

use crate::conversations::ConversationError;
use crate::users::UserReadError;
use crate::{execute, load, stream_id, App, CommandError, Context, Outcome, StoreOrDecode};

pub use input::{NewUser, PasswordChange, ProfileChange};
pub use login::{log_in, Issued};

/// Why an account use case did not go through (`api` maps each to a problem document).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Fields that are missing or malformed, all of them.
    #[error("invalid input")]
    Invalid(Vec<Invalid>),
    #[error("no such user")]
    NotFound,
    /// Nobody holds this (normalised) login.
    #[error("no user has the login {0}")]
    NoSuchLogin(String),
    /// The current password given to change one's own is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Wrong login or password, or an inactive user, at login (deliberately not which).
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("administrators cannot take away their own role; ask another administrator")]
    CannotDemoteSelf,
    #[error("administrators cannot deactivate themselves; ask another administrator")]
    CannotDeactivateSelf,
    /// The password could not be hashed (logged where it happened).
    #[error("cannot hash the password")]
    Hashing,
    /// A stored user event could not be decoded (logged where it happened).
    #[error("stored user event unreadable")]
    Unreadable,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Users(#[from] UserReadError),
    #[error(transparent)]
    Load(#[from] StoreOrDecode),
    #[error(transparent)]
    User(#[from] CommandError<UserError>),
    #[error(transparent)]
    Login(#[from] CommandError<LoginError>),
    /// Leaving the channels of a deactivated user.
    #[error(transparent)]
    Channel(#[from] CommandError<ChannelError>),
    /// Routing the queues of someone who came online.
    #[error(transparent)]
    Conversation(#[from] Box<ConversationError>),
}

impl From<ConversationError> for AccountError {
    fn from(e: ConversationError) -> Self {
        AccountError::Conversation(Box::new(e))
    }
}

/// A user after a command, and what the command did.
#[derive(Clone, Debug)]
pub struct Written {
    pub user: UserSummary,
    pub outcome: Outcome,
}

/// How a user looks in responses: never the password hash or tokens.
pub fn summary(u: &User, version: u64) -> UserSummary {
    UserSummary {
        user_id: u.id.unwrap_or_default(),
        name: u.name.clone(),
        login: u.login.as_ref().map(|l| l.as_str().to_string()).unwrap_or_default(),
        chat_name: u.chat_name.clone(),
        display_name: u.display_name().to_string(),
        languages: u.languages.clone(),
        country: u.country.as_ref().map(|c| c.to_string()),
        role: u.role,
        active: u.active,
        status: u.status,
        version,
    }
}

/// The context of a command run by the system (the command line, the first start).
pub fn system_context(app: &App) -> Context {
    Context::new(domain::metadata::Actor::system(), app.clock.now())
}

/// A user as stored now, with their stream version; `NotFound` if there is none.
pub async fn current(app: &App, id: Uuid) -> Result<(User, u64), AccountError> {
    let loaded = load::<User>(app.events.as_ref(), &stream_id::<User>(id)).await?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok((loaded.state, v)),
        _ => Err(AccountError::NotFound),
    }
}

/// Hashes a password that passed the policy.
async fn hash(password: String) -> Result<String, AccountError> {
    secrets::hash_password(password).await.ok_or_else(|| {
        tracing::error!("cannot hash a password");
        AccountError::Hashing
    })
}

/// Runs a user decision and answers with the user as decided.
async fn write(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    decide: impl Fn(&User) -> Result<Vec<UserEvent>, UserError>,
) -> Result<Written, AccountError> {
    let decided: Mutex<Option<User>> = Mutex::new(None);
    let outcome = execute::<User, UserError>(app.events.as_ref(), &stream_id::<User>(id), ctx, expected, |u| {
        let events = decide(u)?;
        let mut after = u.clone();
        for e in &events {
            after.apply(e);
        }
        *decided.lock().unwrap_or_else(|p| p.into_inner()) = Some(after);
        Ok(events)
    })
    .await?;
    let user = match decided.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(u) => u,
        // A retried request (same Idempotency-Key): nothing was decided, show what is stored.
        None => current(app, id).await?.0,
    };
    Ok(Written { user: summary(&user, outcome.version.unwrap_or_default()), outcome })
}

/// Claims the login, then creates the user. With an `Idempotency-Key` a retry lands on the
/// same user and answers as the first request did.
pub async fn create_user(app: &App, ctx: &Context, new: NewUser) -> Result<Written, AccountError> {
    let (login, profile, role) = new.parse().map_err(AccountError::Invalid)?;
    let id = ctx.new_id("user");
    let hash = hash(new.password).await?;
    // A retry (same Idempotency-Key) whose user exists answers as the first request did,
    // whatever its body: it must not claim another login on the way.
    if !load::<User>(app.events.as_ref(), &stream_id::<User>(id)).await?.state.exists() {
        execute::<Login, _>(app.events.as_ref(), &stream_id::<Login>(login.as_str()), ctx, None, |l| {
            claim_login(l, id)
        })
        .await?;
    }
    write(app, ctx, id, None, |u| user::create(u, id, login.clone(), profile.clone(), role, hash.clone())).await
}

/// Creates a user and makes them an operator of the channel (Odoo's "create" in the
/// operators tab). The channel must take operators before an account is made for it.
pub async fn create_operator(
    app: &App,
    ctx: &Context,
    channel_id: Uuid,
    new: NewUser,
) -> Result<Outcome, AccountError> {
    let stream = stream_id::<Channel>(channel_id);
    let c = load::<Channel>(app.events.as_ref(), &stream).await?.state;
    if c.id.is_none() {
        return Err(CommandError::Domain(ChannelError::NotFound).into());
    }
    if c.archived {
        return Err(CommandError::Domain(ChannelError::Archived).into());
    }
    let user_id = create_user(app, ctx, new).await?.user.user_id;
    Ok(execute::<Channel, _>(app.events.as_ref(), &stream, ctx, None, |c| {
        if c.operators.contains(&user_id) {
            Ok(vec![]) // a retried request
        } else {
            channel::add_operator(c, user_id, true)
        }
    })
    .await?)
}

/// The user who owns `login`.
pub async fn find_by_login(app: &App, login: &str) -> Result<Uuid, AccountError> {
    let email = Email::parse("login", login).map_err(|e| AccountError::Invalid(vec![e]))?;
    let claim = load::<Login>(app.events.as_ref(), &stream_id::<Login>(email.as_str())).await?;
    claim.state.owner.ok_or_else(|| AccountError::NoSuchLogin(email.as_str().to_string()))
}

/// Changes a profile (and the role, if the change names one). Fields not in the change keep
/// the value they have when the command is decided.
pub async fn update_profile(
    app: &App,
    ctx: &Context,
    id: Uuid,
    change: ProfileChange,
    expected: Option<u64>,
) -> Result<Written, AccountError> {
    let (now, _) = current(app, id).await?;
    let (parsed, new_role) = change.parse(&now).map_err(AccountError::Invalid)?;
    if ctx.actor.id == Some(id) && new_role.is_some_and(|r| r != Role::Admin) && now.role == Role::Admin {
        return Err(AccountError::CannotDemoteSelf);
    }
    write(app, ctx, id, expected, |u| {
        let profile = user::Profile {
            name: if change.name.is_some() { parsed.name.clone() } else { u.name.clone() },
            chat_name: if change.chat_name.is_some() { parsed.chat_name.clone() } else { u.chat_name.clone() },
            languages: if change.languages.is_some() { parsed.languages.clone() } else { u.languages.clone() },
            country: if change.country.is_some() { parsed.country.clone() } else { u.country.clone() },
        };
        let mut events = user::update_profile(u, profile)?;
        if let Some(r) = new_role {
            let mut after = u.clone();
            events.iter().for_each(|e| after.apply(e));
            events.extend(user::change_role(&after, r)?);
        }
        Ok(events)
    })
    .await
}

/// Sets a user's password (the policy of `domain::user::password_policy`), which revokes
/// their tokens.
pub async fn set_password(
    app: &App,
    ctx: &Context,
    id: Uuid,
    password: String,
    expected: Option<u64>,
) -> Result<Written, AccountError> {
    user::password_policy("password", &password).map_err(|e| AccountError::Invalid(vec![e]))?;
    let hash = hash(password).await?;
    write(app, ctx, id, expected, |u| user::change_password(u, hash.clone())).await
}

/// A checked [`PasswordChange`]: one's own needs the current password of `by` (the user
/// changing it, as authenticated), checked before the new one is set.
pub async fn change_password(
    app: &App,
    ctx: &Context,
    change: PasswordChange,
    by: &User,
    expected: Option<u64>,
) -> Result<Written, AccountError> {
    if let Some(given) = change.current_password {
        if !secrets::verify_password(given, by.password_hash.clone()).await {
            return Err(AccountError::WrongPassword);
        }
    }
    set_password(app, ctx, change.user_id, change.password, expected).await
}

/// Deactivates a user (revoking their tokens) and makes them leave every channel. Nobody
/// deactivates themselves.
pub async fn deactivate_user(app: &App, ctx: &Context, id: Uuid) -> Result<Written, AccountError> {
    if ctx.actor.id == Some(id) {
        return Err(AccountError::CannotDeactivateSelf);
    }
    let written = write(app, ctx, id, None, user::deactivate).await?;
    // Also when already deactivated: finishes a deactivation interrupted before this step.
    crate::channels::leave_all(app, ctx, id, LeaveReason::Deactivated).await?;
    Ok(written)
}

/// Lets a deactivated user log in again.
pub async fn reactivate_user(app: &App, ctx: &Context, id: Uuid) -> Result<Written, AccountError> {
    write(app, ctx, id, None, user::reactivate).await
}

/// Sets a user's presence status (`online`, `away` or `offline`, as typed); coming online
/// routes the queues of the channels they are joined to.
pub async fn set_status(app: &App, ctx: &Context, id: Uuid, raw: &str) -> Result<Written, AccountError> {
    let status: Status =
        input::choice("status", raw, "online, away or offline").map_err(|e| AccountError::Invalid(vec![e]))?;
    let written = write(app, ctx, id, None, |u| user::set_status(u, status, StatusReason::Chosen)).await?;
    if status == Status::Online {
        // Someone is available: conversations waiting in their channels can be routed.
        crate::conversations::dispatch_for(app, ctx, id).await?;
    }
    Ok(written)
}

/// Every user, by login, folded from the log (always current, whatever the views' lag).
pub async fn all_users(app: &App) -> Result<Vec<UserSummary>, AccountError> {
    let mut users: std::collections::HashMap<String, (User, u64)> = Default::default();
    let filter = EventFilter { category: Some(User::CATEGORY.to_string()), ..Default::default() };
    let mut from = Position::START;
    loop {
        let q = ReadAll { from: Some(from), direction: Direction::Forward, limit: 1000, filter: filter.clone() };
        let page = app.events.read_all(&q).await?;
        let Some(last) = page.last() else { break };
        from = last.position;
        for e in &page {
            let event: UserEvent = domain::aggregate::decode_versioned(&e.event_type, e.schema_version, &e.data)
                .map_err(|err| {
                    tracing::error!(error = %err, stream = %e.stream_id, "stored user event unreadable");
                    AccountError::Unreadable
                })?;
            let (u, v) = users.entry(e.stream_id.clone()).or_default();
            u.apply(&event);
            *v = e.stream_version;
        }
    }
    let mut all: Vec<UserSummary> = users.values().filter(|(u, _)| u.exists()).map(|(u, v)| summary(u, *v)).collect();
    all.sort_by(|a, b| a.login.cmp(&b.login));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::metadata::{Actor, ActorKind};

    use super::*;

    fn app() -> App {
        let events = Arc::new(store::memory::MemoryEventStore::default());
        let views = Arc::new(store::memory_views::MemoryViewStore::default());
        App::new(events, views, crate::Config::default())
    }

    fn operator(app: &App, id: Uuid) -> Context {
        Context::new(Actor { kind: ActorKind::Operator, id: Some(id) }, app.clock.now())
    }

    #[tokio::test]
    async fn a_created_user_logs_in_with_their_password_only() {
        let app = app();
        let new = NewUser {
            login: "Ada@Example.com".into(),
            password: "correct horse battery".into(),
            name: "Ada".into(),
            ..Default::default()
        };
        let written = create_user(&app, &system_context(&app), new).await.unwrap();
        assert_eq!(written.user.login, "ada@example.com");
        assert_eq!(find_by_login(&app, "ada@example.com").await.unwrap(), written.user.user_id);

        let ctx = system_context(&app);
        let wrong = log_in(&app, &ctx, "ada@example.com", "wrong password!".into()).await;
        assert!(matches!(wrong, Err(AccountError::InvalidCredentials)), "{wrong:?}");
        let unknown = log_in(&app, &ctx, "bob@example.com", "correct horse battery".into()).await;
        assert!(matches!(unknown, Err(AccountError::InvalidCredentials)), "{unknown:?}");

        let issued = log_in(&app, &ctx, "ada@example.com", "correct horse battery".into()).await.unwrap();
        assert_eq!(issued.user_id, written.user.user_id);
        let user = app.users.get(app.events.as_ref(), issued.user_id).await.unwrap();
        assert!(user.accepts(&secrets::digest(&issued.token), app.clock.now()), "the token's digest is stored");
    }

    #[tokio::test]
    async fn every_invalid_field_of_a_new_user_is_reported_at_once() {
        let app = app();
        let new = NewUser {
            login: "not an email".into(),
            password: "short".into(),
            role: Some("boss".into()),
            ..Default::default()
        };
        let Err(AccountError::Invalid(errors)) = create_user(&app, &system_context(&app), new).await else {
            panic!("expected invalid input");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for field in ["login", "password", "name", "role"] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
    }

    #[tokio::test]
    async fn administrators_neither_deactivate_nor_demote_themselves() {
        let app = app();
        let admin = crate::first_start::first_start(&app, "admin@example.com", Some("admin password".into()))
            .await
            .unwrap()
            .expect("an empty store gets its admin");
        assert!(crate::first_start::first_start(&app, "admin@example.com", None).await.unwrap().is_none(), "once");
        let id = find_by_login(&app, &admin.login).await.unwrap();
        let ctx = operator(&app, id);

        assert!(matches!(deactivate_user(&app, &ctx, id).await, Err(AccountError::CannotDeactivateSelf)));
        let demote = ProfileChange { role: Some("operator".into()), ..Default::default() };
        assert!(matches!(update_profile(&app, &ctx, id, demote, None).await, Err(AccountError::CannotDemoteSelf)));
        // The system (the command line) may deactivate them.
        let written = deactivate_user(&app, &system_context(&app), id).await.unwrap();
        assert!(!written.user.active);
    }

    #[test]
    fn changing_ones_own_password_needs_the_current_one() {
        let id = Uuid::now_v7();
        let Err(AccountError::Invalid(errors)) = PasswordChange::new(id, true, "long enough pass".into(), None) else {
            panic!("expected invalid input");
        };
        assert_eq!(errors[0].field, "current_password");
        let by_admin = PasswordChange::new(id, false, "long enough pass".into(), Some("ignored".into())).unwrap();
        assert!(!by_admin.checks_current(), "an administrator's reset checks no current password");
    }
}
