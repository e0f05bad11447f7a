//! Read-your-writes on view queries: a client that wrote (and got `X-Livechat-Position`)
//! passes `min_position`, and the view answers once its projector has reached it.

use std::time::Duration;

use axum::http::StatusCode;
use store::Position;

use crate::problem::Problem;
use crate::AppState;

/// Waits for `projector`'s checkpoint to reach `min` (a client's `min_position`), or answers
/// 503 `view-lagging` after 5 s.
pub async fn wait_for_view(state: &AppState, projector: &str, min: Option<Position>) -> Result<(), Problem> {
    let Some(min) = min else { return Ok(()) };
    if projections::wait_for(state.views.as_ref(), projector, min, Duration::from_secs(5)).await? {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "view-lagging",
            format!("the view has not reached position {min} yet; retry shortly"),
        ))
    }
}
