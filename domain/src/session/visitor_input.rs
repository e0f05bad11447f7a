//! What a visitor gives about themselves: name, page, languages.

use crate::limits::MAX_URL_CHARS;
use crate::values::Invalid;

/// Longest visitor name, in characters.
pub const MAX_VISITOR_NAME_CHARS: usize = 100;
/// Most languages a visitor may give.
pub const MAX_LANGUAGES: usize = 10;

/// A page URL the visitor reports: relative or absolute, at most 2,000 characters.
pub fn page_url(url: &str) -> Result<String, Invalid> {
    let url = url.trim();
    if url.chars().count() > MAX_URL_CHARS {
        return Err(Invalid::new("url", format!("is longer than {MAX_URL_CHARS} characters")));
    }
    if url.chars().any(char::is_control) {
        return Err(Invalid::new("url", "contains control characters"));
    }
    Ok(if url.is_empty() { "/".to_string() } else { url.to_string() })
}

/// The visitor's name: absent or blank is anonymous ("Visitor #N"); else one line of at
/// most 100 characters.
pub fn visitor_name(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => crate::values::text("name", n, MAX_VISITOR_NAME_CHARS).map(Some),
        None => Ok(None),
    }
}

/// What a visitor gives to start a conversation, each part validated. Parsed whole before
/// anything is routed or claimed, so that a refused start writes nothing anywhere.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitorInput {
    pub name: Option<String>,
    pub page_url: String,
    /// Normalised language codes, best first (see `values::language`).
    pub languages: Vec<String>,
}

impl VisitorInput {
    /// Every invalid part, one entry each (`name`, `url`, `languages` or `languages[i]`).
    pub fn parse(name: Option<&str>, url: Option<&str>, languages: &[String]) -> Result<VisitorInput, Vec<Invalid>> {
        let mut errors = Vec::new();
        let name = visitor_name(name).map_err(|e| errors.push(e)).ok().flatten();
        let page_url = page_url(url.unwrap_or("/")).map_err(|e| errors.push(e)).unwrap_or_default();
        if languages.len() > MAX_LANGUAGES {
            errors.push(Invalid::new("languages", format!("has more than {MAX_LANGUAGES} entries")));
        }
        let languages: Vec<String> = languages
            .iter()
            .take(MAX_LANGUAGES)
            .enumerate()
            .filter_map(|(i, l)| {
                crate::values::language(&format!("languages[{i}]"), l).map_err(|e| errors.push(e)).ok()
            })
            .collect();
        match errors.is_empty() {
            true => Ok(VisitorInput { name, page_url, languages }),
            false => Err(errors),
        }
    }
}
