//! The users view: one document per user, without credentials.

use domain::user::{Role, Status, UserEvent};
use serde::{Deserialize, Serialize};
use store::views::ViewStore;
use store::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

pub const VIEW: &str = "users";

/// A user as the API shows it. Never holds the password hash or tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserSummary {
    pub user_id: Uuid,
    pub name: String,
    pub login: String,
    /// What visitors see, if set.
    pub chat_name: Option<String>,
    /// `chat_name` or else `name`.
    pub display_name: String,
    pub languages: Vec<String>,
    pub country: Option<String>,
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
    pub active: bool,
    #[schema(value_type = String, example = "online")]
    pub status: Status,
    /// Version of the user's stream: the `ETag` to send in `If-Match`.
    pub version: u64,
}

/// Builds [`UserSummary`] documents, sorted by login.
pub struct Users;

impl Projector for Users {
    fn name(&self) -> &'static str {
        "users"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        match e.category() {
            "user" => vec![(VIEW, e.stream_id.clone())],
            _ => vec![],
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if e.category() != "user" {
            return Ok(());
        }
        let event: UserEvent = ProjectionError::domain_event(e)?;
        let current: Option<UserSummary> = docs
            .get(VIEW, &e.stream_id)
            .map(|d| serde_json::from_value(d.body.clone()))
            .transpose()
            .map_err(|err| ProjectionError::Inconsistent(format!("stored user unreadable: {err}")))?;
        let mut u = match (current, &event) {
            (_, UserEvent::UserCreated { user_id, name, login, chat_name, languages, country, role, .. }) => {
                UserSummary {
                    user_id: *user_id,
                    name: name.clone(),
                    login: login.as_str().to_string(),
                    chat_name: chat_name.clone(),
                    display_name: String::new(),
                    languages: languages.clone(),
                    country: country.as_ref().map(|c| c.to_string()),
                    role: *role,
                    active: true,
                    status: Status::Offline,
                    version: 0,
                }
            }
            (Some(u), _) => u,
            (None, _) => return Err(ProjectionError::Inconsistent(format!("{} before UserCreated", e.event_type))),
        };
        match event {
            UserEvent::UserProfileUpdated { name, chat_name, languages, country } => {
                u.name = name;
                u.chat_name = chat_name;
                u.languages = languages;
                u.country = country.map(|c| c.to_string());
            }
            UserEvent::UserRoleChanged { role } => u.role = role,
            UserEvent::UserDeactivated {} => {
                u.active = false;
                u.status = Status::Offline;
            }
            UserEvent::UserReactivated {} => u.active = true,
            UserEvent::StatusChanged { status, .. } => u.status = status,
            UserEvent::UserCreated { .. }
            | UserEvent::PasswordChanged { .. }
            | UserEvent::TokenIssued { .. }
            | UserEvent::ConversationAssigned { .. }
            | UserEvent::ConversationReleased { .. } => {}
        }
        u.display_name = u.chat_name.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| u.name.clone());
        u.version = e.stream_version;
        let body = serde_json::to_value(&u).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(VIEW, &e.stream_id, Draft { partition: String::new(), sort_key: u.login.clone(), body });
        Ok(())
    }
}

/// Every user, in listing order.
pub async fn all(views: &dyn ViewStore) -> Result<Vec<UserSummary>, StoreError> {
    crate::read::all(views, VIEW, None).await
}

/// The users among `user_ids` the view has, in no particular order.
pub async fn get_many(views: &dyn ViewStore, user_ids: &[Uuid]) -> Result<Vec<UserSummary>, StoreError> {
    let ids: Vec<String> = user_ids.iter().map(|id| domain::event::stream_id::<domain::user::User>(*id)).collect();
    crate::read::get_many(views, VIEW, &ids).await
}
