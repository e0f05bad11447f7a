//! Bearer tokens and who is calling.
//!
//! A token is `lc_<user id>_<32 random bytes, base64url>`. Only its SHA-256 is stored, in the
//! user's `TokenIssued` event, so every node accepts it and a password change or
//! deactivation revokes it at once: each request checks the user's stream version and refolds
//! the stream only when it changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::{DateTime, Utc};
use commands::accounts::secrets::token_user;
use commands::stream_id;
use domain::user::{Role, User};
use uuid::Uuid;

use crate::problem::Problem;
use crate::AppState;

/// Minting and digests are the accounts use cases' (`commands::accounts::secrets`).
pub use commands::accounts::secrets::{digest, mint};
pub use commands::users::UserCache;

/// An authenticated operator or admin.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
    pub user: Arc<User>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 403 unless an admin.
    pub fn require_admin(&self) -> Result<(), Problem> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "this needs an administrator"))
        }
    }

    /// 403 unless an admin or the user `user_id` themselves.
    pub fn require_self_or_admin(&self, user_id: Uuid) -> Result<(), Problem> {
        if self.is_admin() || self.user_id == user_id {
            Ok(())
        } else {
            Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "an operator may only change their own account"))
        }
    }

    pub fn actor(&self) -> domain::metadata::Actor {
        domain::metadata::Actor { kind: domain::metadata::ActorKind::Operator, id: Some(self.user_id) }
    }
}

/// Reads a conversation the caller may see (`commands::conversations::readable` says who).
pub async fn readable(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<(Uuid, domain::session::Session), Problem> {
    let id = crate::commanding::path_id(raw, "conversation")?;
    let by = commands::conversations::Operator { id: caller.user_id, admin: caller.is_admin() };
    Ok((id, commands::conversations::readable(state, by, id).await?))
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or_else(|| unauthorized("send `Authorization: Bearer <token>` (POST /api/v1/auth/token gives one)"))?
            .trim();
        let user_id = token_user(token).ok_or_else(|| unauthorized("this is not a livechat token"))?;
        let now = state.clock.now();
        let user = state.users.get(state.events.as_ref(), user_id).await?;
        if !user.accepts(&digest(token), now) {
            return Err(unauthorized("the token is unknown, expired or revoked; log in again"));
        }
        state.activity.touch(state.views.as_ref(), user_id, now).await;
        Ok(Caller { user_id, role: user.role, user })
    }
}

/// Last activity of each operator, written to the store at most once a minute per user.
#[derive(Default)]
pub struct Activity {
    written: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

impl Activity {
    pub async fn touch(&self, views: &dyn store::ViewStore, user_id: Uuid, now: DateTime<Utc>) {
        {
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            if written.get(&user_id).is_some_and(|t| now - *t < chrono::Duration::seconds(60) && now >= *t) {
                return;
            }
            written.insert(user_id, now);
        }
        if let Err(e) = views.touch(&stream_id::<User>(user_id), now).await {
            tracing::warn!(error = %e, %user_id, "cannot record activity");
        }
    }
}
