//! The wire shape of a chat command's answer (`/help`, `/history`, `/transfer NAME`,
//! `/close`, `/canned`). Parsing is `domain::chat_command`, running a command is the use case
//! `commands::conversations::run_command`; this module shapes its answer for the operator
//! who typed the command only (never a message of the conversation).

use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::conversations::{self as conversation, Operator};
use commands::Context;
use domain::chat_command::ChatCommand;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::mark_position;
use crate::problem::Problem;
use crate::AppState;

/// What a command changed.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// The conversation now belongs to this operator.
    Transferred { operator_id: Uuid, name: String },
    /// The conversation ended.
    Closed,
}

/// A command's answer, for the operator who typed it only (nothing is posted).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CommandAnswer {
    /// `help`, `history`, `transfer`, `close`, `canned` or `unknown`.
    pub command: &'static str,
    /// Text to show the operator.
    pub reply: String,
    /// The items of the reply: visited pages (`/history`), `:shortcut`s (`/canned`), commands.
    pub lines: Vec<String>,
    /// What changed, if anything.
    pub effect: Option<Effect>,
}

impl From<conversation::Effect> for Effect {
    fn from(e: conversation::Effect) -> Self {
        match e {
            conversation::Effect::Transferred { operator_id, name } => Effect::Transferred { operator_id, name },
            conversation::Effect::Closed => Effect::Closed,
        }
    }
}

/// Runs a command typed in `session_id` by `caller`; 200 with the answer, marked with the
/// position of what it wrote. Refusals (not readable, not the conversation's operator,
/// closed) are the same problem documents as the routes'.
pub async fn run(
    state: &AppState,
    ctx: &Context,
    caller: &Caller,
    session_id: Uuid,
    cmd: ChatCommand,
) -> Result<Response, Problem> {
    // Canned responses are read here (their reads live in api); only `/canned` needs them.
    let shortcuts = match cmd {
        ChatCommand::Canned => {
            commands::canned::suggestions(state, caller.user_id, "").await?.into_iter().map(|c| c.shortcut).collect()
        }
        _ => vec![],
    };
    let by = Operator { id: caller.user_id, admin: caller.is_admin() };
    let a = conversation::run_command(state, ctx, by, session_id, cmd, shortcuts).await?;
    let position = a.position;
    let body = CommandAnswer { command: a.command, reply: a.reply, lines: a.lines, effect: a.effect.map(Into::into) };
    let mut res = Json(body).into_response();
    mark_position(&mut res, position);
    Ok(res)
}
