//! Passwords (argon2id) and bearer tokens (`lc_<user id>_<32 random bytes, base64url>`, of
//! which only the SHA-256 is stored, in the user's `TokenIssued` event).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

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
pub fn token_user(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix("lc_")?;
    let (id, _) = rest.split_once('_')?;
    Uuid::try_parse(id).ok()
}

/// Hashes a password with argon2id and a fresh salt, off the async runtime; `None` if the
/// hashing failed.
pub async fn hash_password(password: String) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .ok()
    .and_then(Result::ok)
}

/// Checks a password against a stored hash, off the async runtime.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A hash no password matches, checked instead of a real one for unknown or inactive logins
/// (so that timing does not tell which logins exist).
pub async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY.get_or_init(|| async { hash_password(Uuid::new_v4().to_string()).await.unwrap_or_default() }).await.clone()
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
    }
}
