//! Users as the use cases read them: folded from their streams, cached per node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::user::User;
use store::{EventStore, StoreError};
use uuid::Uuid;

use crate::{load, stream_id};

/// Why a user could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UserReadError {
    /// The store did not say the stream's version.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream could not be loaded or folded (logged where it happened).
    #[error("cannot load the user")]
    Unreadable,
}

/// A user's state and the stream version it was folded at.
type Cached = (Option<u64>, Arc<User>);

/// Users by id, refolded only when their stream moved.
#[derive(Default)]
pub struct UserCache {
    users: Mutex<HashMap<Uuid, Cached>>,
}

impl UserCache {
    /// The current state of a user (a default, non-existing user if there is none).
    pub async fn get(&self, events: &dyn EventStore, user_id: Uuid) -> Result<Arc<User>, UserReadError> {
        let stream = stream_id::<User>(user_id);
        let version = events.stream_version(&stream).await?;
        if let Some((v, u)) = self.users.lock().unwrap_or_else(|p| p.into_inner()).get(&user_id) {
            if *v == version {
                return Ok(u.clone());
            }
        }
        let loaded = load::<User>(events, &stream).await.map_err(|e| {
            tracing::error!(error = %e, %user_id, "cannot load user");
            UserReadError::Unreadable
        })?;
        let user = Arc::new(loaded.state);
        self.users.lock().unwrap_or_else(|p| p.into_inner()).insert(user_id, (loaded.version, user.clone()));
        Ok(user)
    }
}
