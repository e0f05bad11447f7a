//! Chat commands operators type in a conversation (`/help`, `/history`, `/transfer NAME`,
//! `/close`, `/canned`), as in Odoo's composer: the pure part, reading what was typed and
//! the rules of the answers. Running a command (reading the conversation, transferring,
//! closing) is a use case outside the domain.

use uuid::Uuid;

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
    /// The command's name in answers: `help`, `history`, `transfer`, `close`, `canned` or
    /// `unknown`.
    pub fn name(&self) -> &'static str {
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

/// The help lines, one per command.
pub const COMMANDS: [&str; 5] = [
    "/help: show this help",
    "/history: the last 15 pages the visitor visited",
    "/transfer NAME: hand the conversation to another operator of the channel",
    "/close: end the conversation",
    "/canned: list your canned responses",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(c: ChatCommand) -> Parsed {
        Parsed::Command(c)
    }

    #[test]
    fn every_command_has_a_help_line_and_a_name() {
        for c in [
            ChatCommand::Help,
            ChatCommand::History,
            ChatCommand::Transfer(String::new()),
            ChatCommand::Close,
            ChatCommand::Canned,
        ] {
            assert!(COMMANDS.iter().any(|l| l.starts_with(&format!("/{}", c.name()))), "{c:?}");
        }
        assert_eq!(ChatCommand::Unknown("x".into()).name(), "unknown");
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
