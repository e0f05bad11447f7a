//! Logging in: a login and password for a new bearer token.

use domain::metadata::{Actor, ActorKind};
use domain::user::{issue_token, Login, Role, User};
use domain::values::Email;
use uuid::Uuid;

use super::secrets::{dummy_hash, mint, verify_password};
use super::AccountError;
use crate::{execute, load, stream_id, App, Context};

/// A token issued at login.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The bearer token (only its digest is stored).
    pub token: String,
    pub user_id: Uuid,
    pub role: Role,
    /// Seconds until it expires (`Config::token_ttl`).
    pub expires_in: u64,
}

/// Checks the credentials and issues a token, written by the user it is for (`ctx`'s actor
/// becomes them). Wrong login, wrong password and inactive user are one refusal,
/// [`AccountError::InvalidCredentials`], as slow as a real check.
pub async fn log_in(app: &App, ctx: &Context, login: &str, password: String) -> Result<Issued, AccountError> {
    let login = Email::parse("login", login).map_err(|_| AccountError::InvalidCredentials)?;
    let claim = load::<Login>(app.events.as_ref(), &stream_id::<Login>(login.as_str())).await?;
    let Some(user_id) = claim.state.owner else {
        // As slow as a real check, so that timing does not tell which logins exist.
        verify_password(password, dummy_hash().await).await;
        return Err(AccountError::InvalidCredentials);
    };
    let user = app.users.get(app.events.as_ref(), user_id).await?;
    let hash = if user.active { user.password_hash.clone() } else { dummy_hash().await };
    if !verify_password(password, hash).await || !user.active {
        return Err(AccountError::InvalidCredentials);
    }
    let (token, digest) = mint(user_id);
    let ttl = app.config.token_ttl;
    let expires_at = app.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    let mut ctx = ctx.clone();
    ctx.actor = Actor { kind: ActorKind::Operator, id: Some(user_id) };
    // Every login is a new token: a replayed key must not hand back a token never stored.
    ctx.idempotency_key = None;
    execute::<User, _>(app.events.as_ref(), &stream_id::<User>(user_id), &ctx, None, |u| {
        issue_token(u, digest.clone(), expires_at)
    })
    .await?;
    Ok(Issued { token, user_id, role: user.role, expires_in: ttl.as_secs() })
}
