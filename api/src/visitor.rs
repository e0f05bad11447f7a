//! Visitors' tokens: each is scoped to one conversation.
//!
//! A visitor token is `vt_<session id>_<32 random bytes, base64url>`; its SHA-256 is in the
//! conversation's `SessionStarted` event, so any node can check it against the session's
//! stream. It grants that one conversation and nothing else.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine;
use commands::stream_id;
use domain::session::Session;
use rand::RngCore;
use uuid::Uuid;

use crate::auth::digest;
use crate::problem::Problem;
use crate::AppState;

/// A new visitor token for `session_id` and the digest to store.
pub fn mint(session_id: Uuid) -> (String, String) {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let token =
        format!("vt_{}_{}", session_id.simple(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let d = digest(&token);
    (token, d)
}

/// The conversation a visitor token claims (not yet verified).
pub fn token_session(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix("vt_")?;
    let (id, _) = rest.split_once('_')?;
    Uuid::try_parse(id).ok()
}

/// Checks a visitor token against its conversation's stream; the session id if it holds.
pub async fn verify(state: &AppState, token: &str) -> Result<Uuid, Problem> {
    let unauthorized = || Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "this visitor token is not valid");
    let session_id = token_session(token).ok_or_else(unauthorized)?;
    // The digest never changes once written: this node's cached copy of the session will do.
    let session = state
        .sessions
        .state(state.events.as_ref(), &stream_id::<Session>(session_id))
        .await
        .map_err(|e| crate::commanding::refused::<Problem>(e.into()))?
        .state;
    if session.exists() && session.visitor_token_sha256 == digest(token) {
        Ok(session_id)
    } else {
        Err(unauthorized())
    }
}

/// A visitor, authenticated for exactly one conversation.
#[derive(Clone, Copy, Debug)]
pub struct VisitorCaller {
    pub session_id: Uuid,
}

impl VisitorCaller {
    /// The conversation named in the path, if it is this visitor's own (403 otherwise).
    pub fn own(self, raw: &str) -> Result<Uuid, Problem> {
        let id = crate::commanding::path_id(raw, "conversation")?;
        if self.session_id != id {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "not-your-conversation",
                "this token opens another conversation",
            ));
        }
        Ok(id)
    }
}

impl FromRequestParts<AppState> for VisitorCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send the visitor token as `Authorization: Bearer vt_...`",
                )
            })?;
        Ok(VisitorCaller { session_id: verify(state, token).await? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_tokens_name_their_conversation() {
        let s = Uuid::now_v7();
        let (t, d) = mint(s);
        assert_eq!(token_session(&t), Some(s));
        assert_eq!(digest(&t), d);
        assert_eq!(token_session("lc_abc_def"), None, "an operator token is not a visitor token");
    }
}
