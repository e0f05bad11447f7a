//! Texts a conversation shows as system messages, in Odoo's words (the fold and the
//! decisions both need them).

/// Odoo's `rating_text` for a livechat rating value: "Happy", "Neutral" or "Unhappy".
pub fn rating_label(value: u8) -> &'static str {
    match value {
        v if v >= 4 => "Happy",
        v if v >= 3 => "Neutral",
        _ => "Unhappy",
    }
}

/// The system message a rating shows in the history: "Rating: Unhappy", then the feedback
/// on its own line.
pub fn rating_message(value: u8, feedback: Option<&str>) -> String {
    match feedback {
        Some(f) => format!("Rating: {}\n{f}", rating_label(value)),
        None => format!("Rating: {}", rating_label(value)),
    }
}
