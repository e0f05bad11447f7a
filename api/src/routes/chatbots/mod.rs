//! Chatbot scripts (administrators): the script, its steps and their answers, and dry runs.
//! A script is read from its stream (`ETag` = its version, which every edit bumps); lists come
//! from the `chatbots` view. Every write answers with the whole script. The use cases are
//! `commands::chatbots`; here: the wire shapes ([`wire`]), the script's own routes
//! ([`scripts`]), its steps and answers ([`steps`]) and dry runs ([`dry_runs`]).

use axum::routing::{get, patch, post, put};
use axum::Router;

use crate::AppState;

mod dry_runs;
mod scripts;
mod steps;
mod wire;

pub use dry_runs::*;
pub use scripts::*;
pub use steps::*;
pub use wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/chatbots", get(list).post(create))
        .route("/api/v1/chatbots/{id}", get(show).patch(update))
        .route("/api/v1/chatbots/{id}/steps", post(add_step))
        .route("/api/v1/chatbots/{id}/steps/order", put(order_steps))
        .route("/api/v1/chatbots/{id}/steps/{step_id}", patch(edit_step).delete(remove_step))
        .route("/api/v1/chatbots/{id}/steps/{step_id}/answers", post(add_answer))
        .route("/api/v1/chatbots/{id}/steps/{step_id}/answers/order", put(order_answers))
        .route("/api/v1/chatbots/{id}/steps/{step_id}/answers/{answer_id}", patch(edit_answer).delete(remove_answer))
        .route("/api/v1/chatbots/{id}/test", post(test))
        .route("/api/v1/chatbots/{id}/test/{test_id}/answer", post(test_answer))
}
