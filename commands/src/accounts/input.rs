//! What the account use cases are given, as typed (strings), and its validation: every field
//! is checked and every error reported at once.

use domain::user::{self, password_policy, ProfileInput, Role, User};
use domain::values::{Email, Invalid};
use uuid::Uuid;

use super::AccountError;

/// A new user, as typed.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub login: String,
    pub password: String,
    pub name: String,
    pub chat_name: Option<String>,
    pub languages: Vec<String>,
    pub country: Option<String>,
    /// `admin` or `operator` (the default).
    pub role: Option<String>,
}

/// Changes to a profile: `None` keeps a field, `Some(None)` (or `Some(Some(""))`) clears
/// `chat_name` and `country`.
#[derive(Clone, Debug, Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub chat_name: Option<Option<String>>,
    pub languages: Option<Vec<String>>,
    pub country: Option<Option<String>>,
    /// `admin` or `operator`.
    pub role: Option<String>,
}

/// A checked password change (see [`PasswordChange::new`]).
#[derive(Clone, Debug)]
pub struct PasswordChange {
    pub(super) user_id: Uuid,
    pub(super) password: String,
    /// Given (and required) when users change their own.
    pub(super) current_password: Option<String>,
}

/// A value of a domain enum (`Role`, `Status`) from its serialized name.
pub(super) fn choice<T: serde::de::DeserializeOwned>(field: &str, raw: &str, expected: &str) -> Result<T, Invalid> {
    serde_json::from_value(serde_json::Value::String(raw.trim().to_lowercase()))
        .map_err(|_| Invalid::new(field, format!("'{raw}' is not {expected}")))
}

fn role(raw: &str) -> Result<Role, Invalid> {
    choice("role", raw, "admin or operator")
}

fn required(field: &str, raw: &str) -> Result<(), Invalid> {
    if raw.trim().is_empty() {
        Err(Invalid::new(field, "is required"))
    } else {
        Ok(())
    }
}

impl NewUser {
    /// Validates every field, collecting all errors.
    pub(super) fn parse(&self) -> Result<(Email, user::Profile, Role), Vec<Invalid>> {
        let mut errors = Vec::new();
        let login = required("login", &self.login)
            .and_then(|_| Email::parse("login", &self.login))
            .map_err(|e| errors.push(e))
            .ok();
        let _ = required("password", &self.password)
            .and_then(|_| password_policy("password", &self.password))
            .map_err(|e| errors.push(e));
        let profile = ProfileInput {
            name: self.name.clone(),
            chat_name: self.chat_name.clone(),
            languages: self.languages.clone(),
            country: self.country.clone(),
        }
        .parse()
        .map_err(|e| errors.extend(e))
        .ok();
        let role = self.role.as_deref().map(role).transpose().map_err(|e| errors.push(e)).ok().flatten();
        match (login, profile) {
            (Some(login), Some(profile)) if errors.is_empty() => Ok((login, profile, role.unwrap_or_default())),
            _ => Err(errors),
        }
    }
}

impl ProfileChange {
    /// Validates the submitted fields (absent ones are `now`'s, valid, values).
    pub(super) fn parse(&self, now: &User) -> Result<(user::Profile, Option<Role>), Vec<Invalid>> {
        let text = |patched: &Option<Option<String>>, stored: &Option<String>| match patched {
            Some(v) => v.clone(),
            None => stored.clone(),
        };
        let input = ProfileInput {
            name: self.name.clone().unwrap_or_else(|| now.name.clone()),
            chat_name: text(&self.chat_name, &now.chat_name),
            languages: self.languages.clone().unwrap_or_else(|| now.languages.clone()),
            country: text(&self.country, &now.country.as_ref().map(|c| c.to_string())),
        };
        let mut errors = Vec::new();
        let parsed = input.parse().map_err(|e| errors.extend(e)).ok();
        let new_role = self.role.as_deref().map(role).transpose().map_err(|e| errors.push(e)).ok().flatten();
        match parsed {
            Some(p) if errors.is_empty() => Ok((p, new_role)),
            _ => Err(errors),
        }
    }
}

impl PasswordChange {
    /// Checks a new password for `user_id`; `own` (users changing their own password) needs
    /// the current one. Every error at once.
    pub fn new(
        user_id: Uuid,
        own: bool,
        password: String,
        current_password: Option<String>,
    ) -> Result<Self, AccountError> {
        let mut errors = Vec::new();
        let _ = password_policy("password", &password).map_err(|e| errors.push(e));
        let current_password = current_password.filter(|p| !p.is_empty());
        if own && current_password.is_none() {
            errors.push(Invalid::new("current_password", "is required to change your own password"));
        }
        if !errors.is_empty() {
            return Err(AccountError::Invalid(errors));
        }
        Ok(PasswordChange { user_id, password, current_password: current_password.filter(|_| own) })
    }

    /// Whether the current password will be checked (a guess worth throttling).
    pub fn checks_current(&self) -> bool {
        self.current_password.is_some()
    }
}
