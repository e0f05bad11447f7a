//! Running the chat commands operators type in a conversation (`/help`, `/history`,
//! `/transfer NAME`, `/close`, `/canned`; parsed by `domain::chat_command`). The answer is
//! for the operator who typed the command only: it is never a message of the conversation.
//! An unknown command gets a reply that says what exists, never an error.

use domain::chat_command::{find_operator, recent_pages, ChatCommand, Named, COMMANDS};
use domain::session::{Party, Session, SessionStatus};
use uuid::Uuid;

use super::close::close;
use super::lookup::{channel, session};
use super::transfer::hand_over;
use super::ConversationError;
use crate::{App, Context};

/// The operator acting, as the commands need them.
#[derive(Clone, Copy, Debug)]
pub struct Operator {
    pub id: Uuid,
    pub admin: bool,
}

/// What a command changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The conversation now belongs to this operator.
    Transferred { operator_id: Uuid, name: String },
    /// The conversation ended.
    Closed,
}

/// A command's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandAnswer {
    /// The command's name (`ChatCommand::name`).
    pub command: &'static str,
    /// Text to show the operator.
    pub reply: String,
    /// The items of the reply: visited pages, `:shortcut`s, commands.
    pub lines: Vec<String>,
    pub effect: Option<Effect>,
    /// Where the command's write landed in the log, if it wrote.
    pub position: Option<store::Position>,
}

fn answer(cmd: &ChatCommand, reply: impl Into<String>, lines: Vec<String>) -> CommandAnswer {
    CommandAnswer { command: cmd.name(), reply: reply.into(), lines, effect: None, position: None }
}

fn commands() -> Vec<String> {
    COMMANDS.iter().map(|c| c.to_string()).collect()
}

/// A conversation `by` may see: its operators past and present and admins; the channel's
/// operators while it waits. `NotYours` otherwise.
pub async fn readable(app: &App, by: Operator, session_id: Uuid) -> Result<Session, ConversationError> {
    let (s, _) = session(app, session_id).await?;
    if by.admin || s.handlers.contains(&by.id) {
        return Ok(s);
    }
    // Operators of the channel may look at a waiting conversation before taking it.
    if s.status == SessionStatus::Waiting {
        let c = channel(app, s.channel_id.unwrap_or_default()).await?;
        if c.operators.contains(&by.id) {
            return Ok(s);
        }
    }
    Err(ConversationError::NotYours)
}

/// Runs `cmd` typed in `session_id` by `by` (who must be able to read it). `shortcuts` are
/// the caller's usable `:shortcut`s, for `/canned` (canned responses are read by `api`).
/// Transfers and closes are the same use cases as their routes, so their refusals are too.
pub async fn run_command(
    app: &App,
    ctx: &Context,
    by: Operator,
    session_id: Uuid,
    cmd: ChatCommand,
    shortcuts: Vec<String>,
) -> Result<CommandAnswer, ConversationError> {
    let s = readable(app, by, session_id).await?;
    Ok(match &cmd {
        ChatCommand::Help => help(app, &s, &cmd).await?,
        ChatCommand::History => {
            let pages = recent_pages(&s.pages);
            let reply = if pages.is_empty() { "No history found" } else { "Last visited pages:" };
            answer(&cmd, reply, pages)
        }
        ChatCommand::Canned => {
            let lines: Vec<String> = shortcuts.iter().map(|s| format!(":{s}")).collect();
            let reply = if lines.is_empty() {
                "You have no canned responses yet."
            } else {
                "Your canned responses (type :shortcut to insert one):"
            };
            answer(&cmd, reply, lines)
        }
        ChatCommand::Close => {
            let outcome = close(app, ctx, Party::Operator { id: by.id }, by.admin, session_id).await?;
            let mut a = answer(&cmd, "The conversation is closed.", vec![]);
            a.effect = Some(Effect::Closed);
            a.position = outcome.position;
            a
        }
        ChatCommand::Transfer(name) => transfer(app, ctx, by, session_id, &s, &cmd, name).await?,
        ChatCommand::Unknown(name) => {
            let reply = if name.is_empty() {
                "Type a command after /. The commands are:".to_string()
            } else {
                format!("Unknown command /{name}. The commands are:")
            };
            let mut lines = commands();
            lines.push("To send a message starting with /, type // instead.".into());
            answer(&cmd, reply, lines)
        }
    })
}

/// Odoo's `/help`: who is in the conversation, how to insert canned responses, the commands.
async fn help(app: &App, s: &Session, cmd: &ChatCommand) -> Result<CommandAnswer, ConversationError> {
    let mut members = vec![format!("{} (visitor)", s.visitor_name)];
    if let Some(op) = s.operator {
        let name = match s.operator_names.get(&op) {
            Some(n) => n.clone(),
            None => app.users.get(app.events.as_ref(), op).await?.display_name().to_string(),
        };
        members.push(format!("{name} (operator)"));
    }
    let reply = format!(
        "In this conversation: {}. Type :shortcut to insert a canned response. The commands are:",
        members.join(", ")
    );
    Ok(answer(cmd, reply, commands()))
}

/// `/transfer NAME`: the channel's active operator of that name gets the conversation.
async fn transfer(
    app: &App,
    ctx: &Context,
    by: Operator,
    session_id: Uuid,
    s: &Session,
    cmd: &ChatCommand,
    typed: &str,
) -> Result<CommandAnswer, ConversationError> {
    let c = channel(app, s.channel_id.unwrap_or_default()).await?;
    let mut operators = Vec::new();
    for &id in &c.operators {
        let u = app.users.get(app.events.as_ref(), id).await?;
        if u.exists() && u.active {
            operators.push((id, u.display_name().to_string(), u.name.clone()));
        }
    }
    let names = || operators.iter().filter(|(id, _, _)| *id != by.id).map(|(_, shown, _)| shown.clone());
    if typed.is_empty() {
        return Ok(answer(cmd, "Usage: /transfer NAME. The channel's other operators are:", names().collect()));
    }
    let to = match find_operator(typed, &operators) {
        Named::One(id) if id == by.id => return Ok(answer(cmd, "You are already handling this conversation.", vec![])),
        Named::One(id) => id,
        Named::Nobody => {
            let reply = format!("No operator of this channel is called {typed}. They are:");
            return Ok(answer(cmd, reply, names().collect()));
        }
        Named::Several(all) => {
            let reply = format!("Several operators are called {typed}; ask an administrator to transfer it:");
            return Ok(answer(cmd, reply, all));
        }
    };
    let name = operators.iter().find(|(id, _, _)| *id == to).map(|(_, shown, _)| shown.clone()).unwrap_or_default();
    match hand_over(app, ctx, by.id, by.admin, session_id, Some(to), None).await {
        Ok(outcome) => {
            let mut a = answer(cmd, format!("The conversation is transferred to {name}."), vec![]);
            a.effect = Some(Effect::Transferred { operator_id: to, name });
            a.position = outcome.position;
            Ok(a)
        }
        Err(ConversationError::OperatorAtCapacity) => {
            Ok(answer(cmd, format!("{name} is at their maximum of conversations; try someone else."), vec![]))
        }
        Err(e) => Err(e),
    }
}
