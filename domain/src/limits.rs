//! Lengths shared by several aggregates (and the API that checks them before a command).

/// Longest message, in characters: a conversation's message, a bot step's text, a
/// multi-line answer to a bot.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Longest page URL a visitor reports.
pub const MAX_URL_CHARS: usize = 2000;
