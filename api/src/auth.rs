//! Bearer tokens and who is calling.
//!
//! A token is `lc_<user id>_<32 random bytes, base64url>`. Only its SHA-256 is stored, in the
//! user's `TokenIssued` event, so every node accepts it and a password change or
//! deactivation revokes it at once: each request checks the user's stream version and refolds
//! the stream only when it changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine;
use chrono::{DateTime, Utc};
use commands::stream_id;
use domain::user::{Role, User};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::problem::Problem;
use crate::AppState;

/// A new token and the digest to store.
pub fn mint(user_id: Uuid) -> (String, String) {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let token = format!("lc_{}_{}", user_id.simple(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let digest = digest(&token);
    (token, digest)
}

/// SHA-256 of a token, hex.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The user a token claims to belong to (not yet verified).
fn token_user(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix("lc_")?;
    let (id, _) = rest.split_once('_')?;
    Uuid::try_parse(id).ok()
}

/// Hashes a password with argon2id and a fresh salt, off the async runtime.
pub async fn hash_password(password: String) -> Result<String, Problem> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(|| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"))
}

/// Checks a password against a stored hash, off the async runtime.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// Passwords: at least 10 characters, at most 200.
pub fn check_password(field: &str, password: &str) -> Result<(), domain::values::Invalid> {
    let n = password.chars().count();
    if n < 10 {
        return Err(domain::values::Invalid::new(field, "must have at least 10 characters"));
    }
    if n > 200 {
        return Err(domain::values::Invalid::new(field, "must have at most 200 characters"));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_user_and_are_stored_as_digests() {
        let id = Uuid::now_v7();
        let (token, d) = mint(id);
        assert_eq!(token_user(&token), Some(id));
        assert_eq!(digest(&token), d);
        assert_eq!(d.len(), 64);
        assert_ne!(mint(id).0, token, "random");
        assert_eq!(token_user("Bearer x"), None);
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), h.clone()).await);
        assert!(!verify_password("wrong".into(), h).await);
        assert!(check_password("p", "short").is_err());
    }
}
