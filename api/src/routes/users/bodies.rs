//! The wire shapes of the users routes, and what the account use cases get from them.

use base64::Engine;
use commands::accounts;
use projections::users::UserSummary;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A new user. Every field is checked and every error reported at once (422).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// An email address; unique among users.
    #[serde(default)]
    pub login: String,
    /// 10 to 200 characters.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub name: String,
    /// The name visitors see.
    #[serde(default)]
    pub chat_name: Option<String>,
    /// Language codes such as `en` or `fr_BE`.
    #[serde(default)]
    pub languages: Vec<String>,
    /// ISO 3166-1 alpha-2 code.
    #[serde(default)]
    pub country: Option<String>,
    /// `admin` or `operator` (the default).
    #[serde(default)]
    #[schema(example = "operator")]
    pub role: Option<String>,
}

/// Changes to a profile: absent fields keep their value; `chat_name` and `country` are
/// cleared by `null` or `""`. Only an administrator may change `role`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub chat_name: Option<Option<String>>,
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    /// `admin` or `operator`.
    #[serde(default)]
    #[schema(example = "admin")]
    pub role: Option<String>,
}

/// A field that is present, possibly `null` (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A new password. Users changing their own must give the current one; an administrator
/// may set anyone else's without it. Every token of the user is revoked.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// 10 to 200 characters.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub current_password: Option<String>,
}

/// The caller's presence status.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `online`, `away` or `offline`.
    #[serde(default)]
    #[schema(example = "away")]
    pub status: String,
}

/// A page of users, ordered by login.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query parameters of `GET /api/v1/users` (documentation; parsing is in the handler).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UsersQuery {
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Read-your-writes: wait (up to 5 s) until the view includes this position.
    min_position: Option<String>,
}

impl From<NewUser> for accounts::NewUser {
    fn from(n: NewUser) -> Self {
        accounts::NewUser {
            login: n.login,
            password: n.password,
            name: n.name,
            chat_name: n.chat_name,
            languages: n.languages,
            country: n.country,
            role: n.role,
        }
    }
}

impl From<ProfilePatch> for accounts::ProfileChange {
    fn from(p: ProfilePatch) -> Self {
        accounts::ProfileChange {
            name: p.name,
            chat_name: p.chat_name,
            languages: p.languages,
            country: p.country,
            role: p.role,
        }
    }
}

/// The cursor after a document: its sort key (the login) and id, opaque to clients.
pub(super) fn cursor_of(sort_key: &str, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{sort_key}\n{id}"))
}

pub(super) fn parse_cursor(raw: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).ok()?;
    let (sort_key, id) =
        String::from_utf8(bytes).ok()?.split_once('\n').map(|(s, i)| (s.to_string(), i.to_string()))?;
    Some((sort_key, id))
}
