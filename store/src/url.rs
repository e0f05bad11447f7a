//! Where the store lives, as given on the command line (`--store`, `DATABASE_URL`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    Memory,
    Sqlite(PathBuf),
    Postgres(String),
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory:" || s == "memory" {
            Ok(StoreUrl::Memory)
        } else if let Some(path) = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("sqlite: needs a file path, as in sqlite:./data/livechat.db".into());
            }
            Ok(StoreUrl::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreUrl::Postgres(s.to_string()))
        } else {
            Err(format!("unknown store '{s}': use memory:, sqlite:PATH or postgres://USER@HOST/DB"))
        }
    }
}

impl fmt::Display for StoreUrl {
    /// Prints the URL without a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Memory => write!(f, "memory:"),
            StoreUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreUrl::Postgres(url) => write!(f, "{}", redact_password(url)),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
