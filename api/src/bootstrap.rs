//! First start on an empty store: the use case is `commands::first_start`; this keeps the
//! entry point servers and tests call.

pub use commands::first_start::{default_channel_id, Bootstrapped};

use crate::AppState;

/// On a store without users, creates the admin and, if there is no channel either, Odoo's
/// default channel (`commands::first_start::first_start`); the error as a message.
pub async fn bootstrap(
    state: &AppState,
    login: &str,
    password: Option<String>,
) -> Result<Option<Bootstrapped>, String> {
    commands::first_start::first_start(state, login, password).await.map_err(|e| e.0)
}
