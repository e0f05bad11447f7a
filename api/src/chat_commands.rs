//! Chat commands operators type in a conversation (`/help`, `/history`, `/transfer NAME`,
//! `/close`, `/canned`), as in Odoo's composer. The answer goes to the operator who typed
//! the command only: it is never a message of the conversation. An unknown command gets a
//! reply that says what exists, never an error.

use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::Context;
use domain::session::Session;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::mark_position;
use crate::problem::Problem;
use crate::routes::canned;
use crate::AppState;
use commands::conversations::{self as conversation, ConversationError};

/// How many visited pages `/history` shows (Odoo keeps the last 15).
pub const HISTORY_PAGES: usize = 15;

/// A command an operator typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatCommand {
    Help,
    History,
    /// The name as typed (spaces collapsed); empty when missing.
    Transfer(String),
    Close,
    Canned,
    /// Anything else, by the word typed after `/` (empty for `/` alone).
    Unknown(String),
}

impl ChatCommand {
    fn name(&self) -> &'static str {
        match self {
            ChatCommand::Help => "help",
            ChatCommand::History => "history",
            ChatCommand::Transfer(_) => "transfer",
            ChatCommand::Close => "close",
            ChatCommand::Canned => "canned",
            ChatCommand::Unknown(_) => "unknown",
        }
    }
}

/// What an operator typed: a command, or a text to post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Command(ChatCommand),
    Text(String),
}

/// Reads an operator's text. A command starts with `/` (leading spaces ignored) followed by
/// its name (any case) and arguments; `//` escapes a text that starts with `/`.
pub fn parse(text: &str) -> Parsed {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix('/') else { return Parsed::Text(text.to_string()) };
    if rest.starts_with('/') {
        return Parsed::Text(rest.to_string());
    }
    let mut words = rest.split_whitespace();
    let name = words.next().unwrap_or_default().to_lowercase();
    let args = words.collect::<Vec<_>>().join(" ");
    Parsed::Command(match name.as_str() {
        "help" => ChatCommand::Help,
        "history" => ChatCommand::History,
        "transfer" => ChatCommand::Transfer(args),
        "close" => ChatCommand::Close,
        "canned" => ChatCommand::Canned,
        _ => ChatCommand::Unknown(name),
    })
}

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

const COMMANDS: [&str; 5] = [
    "/help: show this help",
    "/history: the last 15 pages the visitor visited",
    "/transfer NAME: hand the conversation to another operator of the channel",
    "/close: end the conversation",
    "/canned: list your canned responses",
];

fn answer(cmd: &ChatCommand, reply: impl Into<String>, lines: Vec<String>) -> CommandAnswer {
    CommandAnswer { command: cmd.name(), reply: reply.into(), lines, effect: None }
}

/// The last [`HISTORY_PAGES`] distinct pages, the most recent last (a page visited again
/// moves to the end).
pub fn recent_pages(pages: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in pages {
        out.retain(|q| q != p);
        out.push(p.clone());
    }
    let skip = out.len().saturating_sub(HISTORY_PAGES);
    out.split_off(skip)
}

/// Who a `/transfer NAME` names among `(id, chat name, name)` of the channel's operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    One(Uuid),
    Nobody,
    Several(Vec<String>),
}

/// Case-insensitive match of the whole chat name or name.
pub fn find_operator(typed: &str, operators: &[(Uuid, String, String)]) -> Named {
    let wanted = typed.trim().to_lowercase();
    let found: Vec<&(Uuid, String, String)> = operators
        .iter()
        .filter(|(_, shown, name)| shown.to_lowercase() == wanted || name.to_lowercase() == wanted)
        .collect();
    match found.as_slice() {
        [] => Named::Nobody,
        [(id, _, _)] => Named::One(*id),
        many => Named::Several(many.iter().map(|(_, shown, _)| shown.clone()).collect()),
    }
}

/// Runs a command typed in `session_id` by `caller` (who must be able to read it); 200 with
/// the answer. Transfers and closes go through the same code as their routes, so refusals
/// (not the conversation's operator, closed) are the same problem documents.
pub async fn run(
    state: &AppState,
    ctx: &Context,
    caller: &Caller,
    session_id: Uuid,
    cmd: ChatCommand,
) -> Result<Response, Problem> {
    let (_, s) = crate::auth::readable(state, caller, &session_id.to_string()).await?;
    let mut position = None;
    let reply = match &cmd {
        ChatCommand::Help => help(state, &s, &cmd).await?,
        ChatCommand::History => {
            let pages = recent_pages(&s.pages);
            let reply = if pages.is_empty() { "No history found".to_string() } else { "Last visited pages:".into() };
            answer(&cmd, reply, pages)
        }
        ChatCommand::Canned => {
            let mine = canned::suggestions(state, caller.user_id, "").await?;
            let lines: Vec<String> = mine.iter().map(|c| format!(":{}", c.shortcut)).collect();
            let reply = if lines.is_empty() {
                "You have no canned responses yet."
            } else {
                "Your canned responses (type :shortcut to insert one):"
            };
            answer(&cmd, reply, lines)
        }
        ChatCommand::Close => {
            let by = domain::session::Party::Operator { id: caller.user_id };
            let outcome = conversation::close(state, ctx, by, caller.is_admin(), session_id).await?;
            position = outcome.position;
            let mut a = answer(&cmd, "The conversation is closed.", vec![]);
            a.effect = Some(Effect::Closed);
            a
        }
        ChatCommand::Transfer(name) => {
            let (a, p) = transfer(state, ctx, caller, session_id, &s, &cmd, name).await?;
            position = p;
            a
        }
        ChatCommand::Unknown(name) => {
            let reply = if name.is_empty() {
                "Type a command after /. The commands are:".to_string()
            } else {
                format!("Unknown command /{name}. The commands are:")
            };
            let mut lines: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
            lines.push("To send a message starting with /, type // instead.".into());
            answer(&cmd, reply, lines)
        }
    };
    let mut res = Json(reply).into_response();
    mark_position(&mut res, position);
    Ok(res)
}

/// Odoo's `/help`: who is in the conversation, how to insert canned responses, the commands.
async fn help(state: &AppState, s: &Session, cmd: &ChatCommand) -> Result<CommandAnswer, Problem> {
    let mut members = vec![format!("{} (visitor)", s.visitor_name)];
    if let Some(op) = s.operator {
        let name = match s.operator_names.get(&op) {
            Some(n) => n.clone(),
            None => state.users.get(state.events.as_ref(), op).await?.display_name().to_string(),
        };
        members.push(format!("{name} (operator)"));
    }
    let reply = format!(
        "In this conversation: {}. Type :shortcut to insert a canned response. The commands are:",
        members.join(", ")
    );
    Ok(answer(cmd, reply, COMMANDS.iter().map(|c| c.to_string()).collect()))
}

async fn transfer(
    state: &AppState,
    ctx: &Context,
    caller: &Caller,
    session_id: Uuid,
    s: &Session,
    cmd: &ChatCommand,
    typed: &str,
) -> Result<(CommandAnswer, Option<store::Position>), Problem> {
    let c = conversation::channel(state, s.channel_id.unwrap_or_default()).await?;
    let mut operators = Vec::new();
    for &id in &c.operators {
        let u = state.users.get(state.events.as_ref(), id).await?;
        if u.exists() && u.active {
            operators.push((id, u.display_name().to_string(), u.name.clone()));
        }
    }
    let names = || operators.iter().filter(|(id, _, _)| *id != caller.user_id).map(|(_, shown, _)| shown.clone());
    if typed.is_empty() {
        return Ok((answer(cmd, "Usage: /transfer NAME. The channel's other operators are:", names().collect()), None));
    }
    let to = match find_operator(typed, &operators) {
        Named::One(id) if id == caller.user_id => {
            return Ok((answer(cmd, "You are already handling this conversation.", vec![]), None))
        }
        Named::One(id) => id,
        Named::Nobody => {
            let reply = format!("No operator of this channel is called {typed}. They are:");
            return Ok((answer(cmd, reply, names().collect()), None));
        }
        Named::Several(all) => {
            let reply = format!("Several operators are called {typed}; ask an administrator to transfer it:");
            return Ok((answer(cmd, reply, all), None));
        }
    };
    let name = operators.iter().find(|(id, _, _)| *id == to).map(|(_, shown, _)| shown.clone()).unwrap_or_default();
    match conversation::hand_over(state, ctx, caller.user_id, caller.is_admin(), session_id, Some(to), None).await {
        Ok(outcome) => {
            let mut a = answer(cmd, format!("The conversation is transferred to {name}."), vec![]);
            a.effect = Some(Effect::Transferred { operator_id: to, name });
            Ok((a, outcome.position))
        }
        Err(ConversationError::OperatorAtCapacity) => {
            Ok((answer(cmd, format!("{name} is at their maximum of conversations; try someone else."), vec![]), None))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(c: ChatCommand) -> Parsed {
        Parsed::Command(c)
    }

    #[test]
    fn commands_are_parsed_from_what_operators_type() {
        let table = [
            ("/help", cmd(ChatCommand::Help)),
            ("/HELP", cmd(ChatCommand::Help)),
            ("  /history  ", cmd(ChatCommand::History)),
            ("/transfer Bob", cmd(ChatCommand::Transfer("Bob".into()))),
            ("/transfer   Bob   Smith ", cmd(ChatCommand::Transfer("Bob Smith".into()))),
            ("/transfer", cmd(ChatCommand::Transfer(String::new()))),
            ("/close", cmd(ChatCommand::Close)),
            ("/canned", cmd(ChatCommand::Canned)),
            ("/unknown", cmd(ChatCommand::Unknown("unknown".into()))),
            ("/", cmd(ChatCommand::Unknown(String::new()))),
            ("/ help", cmd(ChatCommand::Help)),
            ("//etc/hosts is missing", Parsed::Text("/etc/hosts is missing".into())),
            ("hello /help", Parsed::Text("hello /help".into())),
            (":hello", Parsed::Text(":hello".into())),
        ];
        for (typed, expected) in table {
            assert_eq!(parse(typed), expected, "{typed:?}");
        }
    }

    #[test]
    fn history_is_the_last_15_distinct_pages_most_recent_last() {
        assert!(recent_pages(&[]).is_empty());
        let pages: Vec<String> = ["/a", "/b", "/a"].iter().map(|p| p.to_string()).collect();
        assert_eq!(recent_pages(&pages), vec!["/b", "/a"]);
        let many: Vec<String> = (1..=20).map(|i| format!("/p{i}")).collect();
        let recent = recent_pages(&many);
        assert_eq!((recent.len(), recent[0].as_str(), recent[14].as_str()), (15, "/p6", "/p20"));
    }

    #[test]
    fn transfer_names_match_the_chat_name_or_name_whole_and_case_insensitively() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let ops = vec![
            (a, "Ada (support)".to_string(), "Ada".to_string()),
            (b, "Bob".to_string(), "Bob".to_string()),
            (c, "Bobby".to_string(), "Bob".to_string()),
        ];
        assert_eq!(find_operator("ada", &ops), Named::One(a));
        assert_eq!(find_operator("ADA (SUPPORT)", &ops), Named::One(a));
        assert_eq!(find_operator("bobby", &ops), Named::One(c));
        assert_eq!(find_operator("Bob", &ops), Named::Several(vec!["Bob".into(), "Bobby".into()]));
        assert_eq!(find_operator("Ad", &ops), Named::Nobody, "no prefix matches");
    }
}
