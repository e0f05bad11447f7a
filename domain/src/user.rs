//! Users: operators and admins, their profile, credentials, tokens and status.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::Audited;
use crate::event::Aggregate;
use crate::session::{Session, SessionStatus};
use crate::values::{language, optional_text, text, Country, Email, Invalid};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    #[default]
    Operator,
}

/// Presence status; only `online` operators get conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Away,
    #[default]
    Offline,
}

/// Why a status changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// The operator chose it.
    Chosen,
    /// No activity for longer than the inactivity limit.
    Inactive,
    /// The account was deactivated.
    Deactivated,
}

/// What happened to a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum UserEvent {
    UserCreated {
        user_id: Uuid,
        name: String,
        login: Email,
        chat_name: Option<String>,
        languages: Vec<String>,
        country: Option<Country>,
        role: Role,
        /// argon2 PHC string; redacted wherever events are shown.
        password_hash: String,
    },
    UserProfileUpdated {
        name: String,
        chat_name: Option<String>,
        languages: Vec<String>,
        country: Option<Country>,
    },
    UserRoleChanged {
        role: Role,
    },
    /// Revokes every token issued before it.
    PasswordChanged {
        password_hash: String,
    },
    /// Revokes every token; the user can no longer log in.
    UserDeactivated {},
    UserReactivated {},
    /// A bearer token was issued; only its SHA-256 is kept.
    TokenIssued {
        token_sha256: String,
        expires_at: DateTime<Utc>,
    },
    StatusChanged {
        status: Status,
        reason: StatusReason,
    },
    /// A conversation was assigned to this operator (their load; guarded by this stream's
    /// version, so two assignments at once cannot both take the last slot).
    ConversationAssigned {
        session_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The conversation ended or moved on: the slot is free. `reason` is set when the slot
    /// was found stale (see [`stale_reason`]); absent, the path that ended it freed it.
    ConversationReleased {
        session_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<ReleaseReason>,
    },
}

crate::schema::schema_versions!(UserEvent {
    UserCreated => 1,
    UserProfileUpdated => 1,
    UserRoleChanged => 1,
    PasswordChanged => 1,
    UserDeactivated => 1,
    UserReactivated => 1,
    TokenIssued => 1,
    StatusChanged => 1,
    ConversationAssigned => 1,
    ConversationReleased => 1,
});

/// Why a stale slot was freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// No conversation confirmed the claim within the bound (a crash between the claim and
    /// the conversation's write, or a claim given back by nobody).
    Unconfirmed,
    /// The conversation is closed or abandoned.
    Closed,
    /// The conversation belongs to another operator now, or went back to a queue.
    Moved,
}

/// A slot taken for a conversation, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub session_id: Uuid,
    pub at: DateTime<Utc>,
}

/// A user as rebuilt from their stream (serialized by the audit projector: a change of
/// shape needs its version bumped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Option<Uuid>,
    pub name: String,
    pub login: Option<Email>,
    pub chat_name: Option<String>,
    pub languages: Vec<String>,
    pub country: Option<Country>,
    pub role: Role,
    pub password_hash: String,
    pub active: bool,
    pub status: Status,
    /// Tokens issued since the last password change or deactivation.
    pub tokens: Vec<(String, DateTime<Utc>)>,
    /// Conversations assigned and not yet released, with the time of each claim.
    pub open_conversations: Vec<Claim>,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Whether a slot is taken for `session_id`.
    pub fn holds(&self, session_id: Uuid) -> bool {
        self.open_conversations.iter().any(|c| c.session_id == session_id)
    }

    /// The name visitors see: the online chat name, else the name.
    pub fn display_name(&self) -> &str {
        self.chat_name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.name)
    }

    /// Is `token_sha256` a live token of this active user at `now`?
    pub fn accepts(&self, token_sha256: &str, now: DateTime<Utc>) -> bool {
        self.active && self.tokens.iter().any(|(t, exp)| t == token_sha256 && *exp > now)
    }
}

impl Aggregate for User {
    type Event = UserEvent;
    const CATEGORY: &'static str = "user";

    fn apply(&mut self, e: &UserEvent) {
        match e {
            UserEvent::UserCreated { user_id, name, login, chat_name, languages, country, role, password_hash } => {
                *self = User {
                    id: Some(*user_id),
                    name: name.clone(),
                    login: Some(login.clone()),
                    chat_name: chat_name.clone(),
                    languages: languages.clone(),
                    country: country.clone(),
                    role: *role,
                    password_hash: password_hash.clone(),
                    active: true,
                    status: Status::Offline,
                    tokens: vec![],
                    open_conversations: vec![],
                    last_assigned_at: None,
                }
            }
            UserEvent::UserProfileUpdated { name, chat_name, languages, country } => {
                self.name = name.clone();
                self.chat_name = chat_name.clone();
                self.languages = languages.clone();
                self.country = country.clone();
            }
            UserEvent::UserRoleChanged { role } => self.role = *role,
            UserEvent::PasswordChanged { password_hash } => {
                self.password_hash = password_hash.clone();
                self.tokens.clear();
            }
            UserEvent::UserDeactivated {} => {
                self.active = false;
                self.tokens.clear();
                self.status = Status::Offline;
            }
            UserEvent::UserReactivated {} => self.active = true,
            UserEvent::TokenIssued { token_sha256, expires_at } => {
                self.tokens.push((token_sha256.clone(), *expires_at))
            }
            UserEvent::StatusChanged { status, .. } => self.status = *status,
            UserEvent::ConversationAssigned { session_id, at } => {
                if !self.holds(*session_id) {
                    self.open_conversations.push(Claim { session_id: *session_id, at: *at });
                }
                self.last_assigned_at = Some(*at);
            }
            UserEvent::ConversationReleased { session_id, .. } => {
                self.open_conversations.retain(|c| c.session_id != *session_id)
            }
        }
    }
}

impl Audited for User {
    const SECRETS: &'static [&'static str] = &["password"];

    /// The profile, role, password (redacted), whether the account is active, the status,
    /// how many tokens are live (issued since the last password change or deactivation) and
    /// the conversations assigned now.
    fn audit_view(&self) -> serde_json::Value {
        if self.id.is_none() {
            return serde_json::Value::Null;
        }
        let open: Vec<_> = self.open_conversations.iter().map(|c| serde_json::json!({ "id": c.session_id })).collect();
        serde_json::json!({
            "name": self.name,
            "login": self.login,
            "chat_name": self.chat_name,
            "languages": self.languages,
            "country": self.country,
            "role": self.role,
            "password": self.password_hash,
            "active": self.active,
            "status": self.status,
            "tokens": self.tokens.len(),
            "open_conversations": open,
        })
    }

    fn forget_secrets(&mut self) {
        self.password_hash.clear();
        for (digest, _) in &mut self.tokens {
            digest.clear();
        }
    }
}

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password, in characters (argon2 hashes anything, but a bound keeps hashing cheap).
pub const MAX_PASSWORD_CHARS: usize = 200;

/// The password policy: 10 to 200 characters, counted as characters (not bytes). Checked
/// before hashing wherever a password is set (user creation, password change, the first
/// administrator).
pub fn password_policy(field: &str, password: &str) -> Result<(), Invalid> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(Invalid::new(field, format!("must have at least {MIN_PASSWORD_CHARS} characters")));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Invalid::new(field, format!("must have at most {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(())
}

/// Why a user command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    /// 404
    #[error("no such user")]
    NotFound,
    /// 409
    #[error("this user already exists")]
    AlreadyExists,
    /// 409
    #[error("the user is deactivated")]
    Deactivated,
    /// 409
    #[error("the operator is at their maximum of concurrent conversations")]
    AtCapacity,
    /// 422
    #[error("{0}")]
    Invalid(#[from] Invalid),
}

/// A profile as submitted, before validation.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ProfileInput {
    pub name: String,
    #[serde(default)]
    pub chat_name: Option<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// A validated profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub chat_name: Option<String>,
    pub languages: Vec<String>,
    pub country: Option<Country>,
}

impl ProfileInput {
    /// Validates every field, collecting all errors.
    pub fn parse(&self) -> Result<Profile, Vec<Invalid>> {
        let mut errors = Vec::new();
        let name = text("name", &self.name, 100).map_err(|e| errors.push(e)).ok();
        let chat_name = match &self.chat_name {
            Some(n) => optional_text("chat_name", n, 100).map_err(|e| errors.push(e)).ok().filter(|n| !n.is_empty()),
            None => None,
        };
        let mut languages = Vec::new();
        for (i, l) in self.languages.iter().enumerate() {
            match language(&format!("languages[{i}]"), l) {
                Ok(l) if !languages.contains(&l) => languages.push(l),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        let country = match self.country.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(c) => Country::parse("country", c).map_err(|e| errors.push(e)).ok(),
            None => None,
        };
        match name {
            Some(name) if errors.is_empty() => Ok(Profile { name, chat_name, languages, country }),
            _ => Err(errors),
        }
    }
}

/// Creates a user (`user_id`, password hash and role come from the caller).
pub fn create(
    state: &User,
    user_id: Uuid,
    login: Email,
    profile: Profile,
    role: Role,
    password_hash: String,
) -> Result<Vec<UserEvent>, UserError> {
    if state.exists() {
        return Err(UserError::AlreadyExists);
    }
    Ok(vec![UserEvent::UserCreated {
        user_id,
        name: profile.name,
        login,
        chat_name: profile.chat_name,
        languages: profile.languages,
        country: profile.country,
        role,
        password_hash,
    }])
}

fn live(state: &User) -> Result<(), UserError> {
    match (state.exists(), state.active) {
        (false, _) => Err(UserError::NotFound),
        (true, false) => Err(UserError::Deactivated),
        (true, true) => Ok(()),
    }
}

pub fn update_profile(state: &User, p: Profile) -> Result<Vec<UserEvent>, UserError> {
    live(state)?;
    let unchanged = state.name == p.name
        && state.chat_name == p.chat_name
        && state.languages == p.languages
        && state.country == p.country;
    if unchanged {
        return Ok(vec![]);
    }
    Ok(vec![UserEvent::UserProfileUpdated {
        name: p.name,
        chat_name: p.chat_name,
        languages: p.languages,
        country: p.country,
    }])
}

pub fn change_role(state: &User, role: Role) -> Result<Vec<UserEvent>, UserError> {
    live(state)?;
    Ok(if state.role == role { vec![] } else { vec![UserEvent::UserRoleChanged { role }] })
}

pub fn change_password(state: &User, password_hash: String) -> Result<Vec<UserEvent>, UserError> {
    live(state)?;
    Ok(vec![UserEvent::PasswordChanged { password_hash }])
}

/// Deactivating also takes the user offline (the caller makes them leave their channels).
pub fn deactivate(state: &User) -> Result<Vec<UserEvent>, UserError> {
    if !state.exists() {
        return Err(UserError::NotFound);
    }
    if !state.active {
        return Ok(vec![]);
    }
    let mut events = vec![UserEvent::UserDeactivated {}];
    if state.status != Status::Offline {
        events.insert(0, UserEvent::StatusChanged { status: Status::Offline, reason: StatusReason::Deactivated });
    }
    Ok(events)
}

pub fn reactivate(state: &User) -> Result<Vec<UserEvent>, UserError> {
    if !state.exists() {
        return Err(UserError::NotFound);
    }
    Ok(if state.active { vec![] } else { vec![UserEvent::UserReactivated {}] })
}

pub fn issue_token(state: &User, token_sha256: String, expires_at: DateTime<Utc>) -> Result<Vec<UserEvent>, UserError> {
    live(state)?;
    Ok(vec![UserEvent::TokenIssued { token_sha256, expires_at }])
}

pub fn set_status(state: &User, status: Status, reason: StatusReason) -> Result<Vec<UserEvent>, UserError> {
    live(state)?;
    Ok(if state.status == status { vec![] } else { vec![UserEvent::StatusChanged { status, reason }] })
}

/// Whether `claim`, held by `operator`, no longer holds a slot at `now`, and why, given its
/// conversation as read now (`None`: no such stream). A closed conversation never takes an
/// operator again, so its claim is stale at once; a claim its conversation does not (yet)
/// name is counted for `bound` after it was taken, since the write confirming it may be in
/// flight, and is stale after that.
pub fn stale_reason(
    claim: &Claim,
    operator: Uuid,
    conversation: Option<&Session>,
    now: DateTime<Utc>,
    bound: Duration,
) -> Option<ReleaseReason> {
    let conversation = conversation.filter(|s| s.exists());
    match conversation {
        Some(s) if s.status == SessionStatus::Closed => return Some(ReleaseReason::Closed),
        Some(s) if s.operator == Some(operator) => return None,
        _ if now - claim.at < bound => return None,
        _ => {}
    }
    Some(match conversation {
        Some(s) if s.operator.is_some() || s.handlers.contains(&operator) => ReleaseReason::Moved,
        _ => ReleaseReason::Unconfirmed,
    })
}

/// The releases of the `stale` slots `state` still holds (each once).
fn releases(state: &User, stale: &[(Uuid, ReleaseReason)]) -> Vec<UserEvent> {
    let mut events: Vec<UserEvent> = Vec::new();
    for &(session_id, reason) in stale {
        let done = events
            .iter()
            .any(|e| matches!(e, UserEvent::ConversationReleased { session_id: s, .. } if *s == session_id));
        if state.holds(session_id) && !done {
            events.push(UserEvent::ConversationReleased { session_id, reason: Some(reason) });
        }
    }
    events
}

/// Takes a conversation slot for `session_id` (at most `max` open at once); taking the same
/// one again changes nothing. The `stale` slots (found by the caller with [`stale_reason`])
/// are freed first, in the same append, and do not count: an operator is never at their
/// maximum because of a conversation that is gone. A stale claim for `session_id` itself is
/// taken anew (with `at`), so that it counts for the full bound again.
pub fn claim_slot(
    state: &User,
    session_id: Uuid,
    at: DateTime<Utc>,
    max: Option<u32>,
    stale: &[(Uuid, ReleaseReason)],
) -> Result<Vec<UserEvent>, UserError> {
    live(state)?;
    let mut events = releases(state, stale);
    let freed = |s: Uuid| {
        events.iter().any(|e| matches!(e, UserEvent::ConversationReleased { session_id, .. } if *session_id == s))
    };
    let held: Vec<Uuid> = state.open_conversations.iter().map(|c| c.session_id).filter(|s| !freed(*s)).collect();
    if held.contains(&session_id) {
        return Ok(events);
    }
    if max.is_some_and(|m| held.len() as u32 >= m) {
        return Err(UserError::AtCapacity);
    }
    events.push(UserEvent::ConversationAssigned { session_id, at });
    Ok(events)
}

/// Frees the `stale` slots (also for deactivated users): the sweeper's decision.
pub fn release_stale(state: &User, stale: &[(Uuid, ReleaseReason)]) -> Result<Vec<UserEvent>, UserError> {
    if !state.exists() {
        return Err(UserError::NotFound);
    }
    Ok(releases(state, stale))
}

/// Frees the slot of `session_id`, if it holds one (also for deactivated users).
pub fn release_slot(state: &User, session_id: Uuid) -> Result<Vec<UserEvent>, UserError> {
    if !state.exists() {
        return Err(UserError::NotFound);
    }
    Ok(if state.holds(session_id) {
        vec![UserEvent::ConversationReleased { session_id, reason: None }]
    } else {
        vec![]
    })
}

/// Blanks secrets in an event's data before it is shown (API, CLI, stream): password hashes
/// and token digests (operators' and visitors'). Exports keep them, so that a restored store keeps its accounts.
pub fn redact(event_type: &str, data: &mut serde_json::Value) {
    let secret = match event_type {
        "UserCreated" | "PasswordChanged" => "password_hash",
        "TokenIssued" => "token_sha256",
        "SessionStarted" => "visitor_token_sha256",
        _ => return,
    };
    if let Some(v) = data.get_mut(secret) {
        *v = serde_json::Value::String("[redacted]".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, History};

    impl History for UserEvent {
        type State = User;
    }
    use crate::event::{decode, encode};
    use chrono::TimeZone;

    fn profile(name: &str) -> Profile {
        ProfileInput { name: name.into(), ..Default::default() }.parse().unwrap()
    }

    fn ada() -> Vec<UserEvent> {
        create(
            &User::default(),
            Uuid::from_u128(1),
            Email::parse("login", "ada@example.com").unwrap(),
            profile("Ada"),
            Role::Operator,
            "$argon2id$hash".into(),
        )
        .unwrap()
    }

    #[test]
    fn passwords_have_10_to_200_characters() {
        assert_eq!(
            password_policy("password", "short"),
            Err(Invalid::new("password", "must have at least 10 characters"))
        );
        assert_eq!(password_policy("password", &"é".repeat(10)), Ok(()), "characters, not bytes");
        assert_eq!(password_policy("password", &"a".repeat(200)), Ok(()));
        assert_eq!(password_policy("p", &"a".repeat(201)), Err(Invalid::new("p", "must have at most 200 characters")));
    }

    #[test]
    fn a_user_is_created_once() {
        let history = ada();
        let user = given(&history);
        assert!(user.active && user.exists());
        assert_eq!(user.display_name(), "Ada");
        let again =
            create(&user, Uuid::from_u128(1), user.login.clone().unwrap(), profile("Ada"), Role::Admin, "x".into());
        assert_eq!(again, Err(UserError::AlreadyExists));
    }

    #[test]
    fn the_chat_name_is_what_visitors_see() {
        let mut history = ada();
        let p = ProfileInput { name: "Ada".into(), chat_name: Some("Ada from Support".into()), ..Default::default() };
        history.extend(update_profile(&given(&history), p.parse().unwrap()).unwrap());
        assert_eq!(given(&history).display_name(), "Ada from Support");
        assert_eq!(update_profile(&given(&history), p.parse().unwrap()), Ok(vec![]), "no change, no event");
    }

    #[test]
    fn a_profile_reports_every_invalid_field() {
        let p = ProfileInput {
            name: " ".into(),
            chat_name: None,
            languages: vec!["fr_BE".into(), "klingon!".into()],
            country: Some("XX".into()),
        };
        let errors = p.parse().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["name", "languages[1]", "country"]);
    }

    #[test]
    fn a_password_change_or_deactivation_revokes_tokens() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let later = now + chrono::Duration::hours(1);
        let mut history = ada();
        history.extend(issue_token(&given(&history), "t1".into(), later).unwrap());
        assert!(given(&history).accepts("t1", now));
        assert!(!given(&history).accepts("t1", later), "expired");
        assert!(!given(&history).accepts("t2", now));
        let mut changed = history.clone();
        changed.extend(change_password(&given(&history), "new".into()).unwrap());
        assert!(!given(&changed).accepts("t1", now));
        let mut gone = history.clone();
        gone.extend(deactivate(&given(&history)).unwrap());
        assert!(!given(&gone).accepts("t1", now));
        assert_eq!(issue_token(&given(&gone), "t3".into(), later), Err(UserError::Deactivated));
        assert_eq!(deactivate(&given(&gone)), Ok(vec![]), "deactivating twice changes nothing");
    }

    #[test]
    fn deactivating_an_online_user_takes_them_offline_first() {
        let mut history = ada();
        history.extend(set_status(&given(&history), Status::Online, StatusReason::Chosen).unwrap());
        let events = deactivate(&given(&history)).unwrap();
        assert_eq!(
            events,
            vec![
                UserEvent::StatusChanged { status: Status::Offline, reason: StatusReason::Deactivated },
                UserEvent::UserDeactivated {}
            ]
        );
    }

    #[test]
    fn the_last_slot_goes_to_one_conversation_only() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let (s1, s2) = (Uuid::from_u128(71), Uuid::from_u128(72));
        let mut history = ada();
        history.extend(claim_slot(&given(&history), s1, now, Some(1), &[]).unwrap());
        assert_eq!(claim_slot(&given(&history), s1, now, Some(1), &[]), Ok(vec![]), "the same one again");
        assert_eq!(claim_slot(&given(&history), s2, now, Some(1), &[]), Err(UserError::AtCapacity));
        assert!(claim_slot(&given(&history), s2, now, None, &[]).is_ok(), "no maximum");
        history.extend(release_slot(&given(&history), s1).unwrap());
        assert!(given(&history).open_conversations.is_empty());
        assert_eq!(given(&history).last_assigned_at, Some(now));
        assert!(claim_slot(&given(&history), s2, now, Some(1), &[]).is_ok());
        assert_eq!(release_slot(&given(&history), s2), Ok(vec![]));
    }

    const BOUND: i64 = 10;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    /// A conversation as its stream would fold: started, then `operator` assigned if any,
    /// then closed if `closed`.
    fn conversation(id: Uuid, handlers: &[Uuid], operator: Option<Uuid>, closed: bool) -> Session {
        Session {
            id: Some(id),
            status: match (closed, operator) {
                (true, _) => SessionStatus::Closed,
                (false, Some(_)) => SessionStatus::Active,
                (false, None) => SessionStatus::Waiting,
            },
            operator,
            handlers: handlers.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_claim_is_stale_once_its_conversation_is_closed_gone_or_someone_elses() {
        let (me, other, s) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(71));
        let claim = Claim { session_id: s, at: at(0) };
        let bound = Duration::seconds(BOUND);
        let reason = |c: Option<&Session>, now| stale_reason(&claim, me, c, now, bound);
        let mine = conversation(s, &[me], Some(me), false);
        assert_eq!(reason(Some(&mine), at(3600)), None, "confirmed: counts however old");
        let closed = conversation(s, &[me], Some(me), true);
        assert_eq!(reason(Some(&closed), at(1)), Some(ReleaseReason::Closed), "closed: at once");
        // Not (yet) named by its conversation: in flight within the bound, stale after it.
        assert_eq!(reason(None, at(BOUND - 1)), None);
        assert_eq!(reason(None, at(BOUND)), Some(ReleaseReason::Unconfirmed));
        let waiting = conversation(s, &[], None, false);
        assert_eq!(reason(Some(&waiting), at(BOUND - 1)), None, "a take in flight");
        assert_eq!(reason(Some(&waiting), at(BOUND)), Some(ReleaseReason::Unconfirmed));
        let theirs = conversation(s, &[other], Some(other), false);
        assert_eq!(reason(Some(&theirs), at(BOUND - 1)), None, "a transfer to me in flight");
        assert_eq!(reason(Some(&theirs), at(BOUND)), Some(ReleaseReason::Moved));
        let queued_again = conversation(s, &[me], None, false);
        assert_eq!(reason(Some(&queued_again), at(BOUND)), Some(ReleaseReason::Moved));
        assert_eq!(reason(Some(&Session::default()), at(BOUND)), Some(ReleaseReason::Unconfirmed), "no stream");
    }

    #[test]
    fn stale_slots_are_freed_in_the_claim_and_do_not_count() {
        let (leaked, closed, new) = (Uuid::from_u128(71), Uuid::from_u128(72), Uuid::from_u128(73));
        let mut history = ada();
        history.extend(claim_slot(&given(&history), leaked, at(0), None, &[]).unwrap());
        history.extend(claim_slot(&given(&history), closed, at(0), None, &[]).unwrap());
        assert_eq!(claim_slot(&given(&history), new, at(20), Some(2), &[]), Err(UserError::AtCapacity));
        let stale = [(leaked, ReleaseReason::Unconfirmed), (closed, ReleaseReason::Closed)];
        let events = claim_slot(&given(&history), new, at(20), Some(1), &stale).unwrap();
        assert_eq!(
            events,
            vec![
                UserEvent::ConversationReleased { session_id: leaked, reason: Some(ReleaseReason::Unconfirmed) },
                UserEvent::ConversationReleased { session_id: closed, reason: Some(ReleaseReason::Closed) },
                UserEvent::ConversationAssigned { session_id: new, at: at(20) },
            ]
        );
        history.extend(events);
        let user = given(&history);
        assert_eq!(user.open_conversations, vec![Claim { session_id: new, at: at(20) }]);
        // A stale entry the state no longer holds (freed by another node meanwhile) writes nothing.
        assert_eq!(claim_slot(&user, new, at(21), Some(1), &stale), Ok(vec![]));
        assert_eq!(release_stale(&user, &stale), Ok(vec![]));
        // Only stale slots are freed: a full operator stays full.
        let other = Uuid::from_u128(74);
        assert_eq!(claim_slot(&user, other, at(21), Some(1), &stale), Err(UserError::AtCapacity));
    }

    #[test]
    fn a_stale_claim_for_the_same_conversation_is_taken_anew() {
        let s = Uuid::from_u128(71);
        let mut history = ada();
        history.extend(claim_slot(&given(&history), s, at(0), Some(1), &[]).unwrap());
        let events = claim_slot(&given(&history), s, at(30), Some(1), &[(s, ReleaseReason::Moved)]).unwrap();
        assert_eq!(
            events,
            vec![
                UserEvent::ConversationReleased { session_id: s, reason: Some(ReleaseReason::Moved) },
                UserEvent::ConversationAssigned { session_id: s, at: at(30) },
            ]
        );
        history.extend(events);
        assert_eq!(given(&history).open_conversations, vec![Claim { session_id: s, at: at(30) }]);
    }

    #[test]
    fn the_sweeper_frees_stale_slots_of_deactivated_users_too() {
        let s = Uuid::from_u128(71);
        let mut history = ada();
        history.extend(claim_slot(&given(&history), s, at(0), Some(1), &[]).unwrap());
        history.extend(deactivate(&given(&history)).unwrap());
        let stale = [(s, ReleaseReason::Unconfirmed), (s, ReleaseReason::Unconfirmed)];
        assert_eq!(
            release_stale(&given(&history), &stale),
            Ok(vec![UserEvent::ConversationReleased { session_id: s, reason: Some(ReleaseReason::Unconfirmed) }]),
            "once, even if listed twice"
        );
        assert_eq!(release_stale(&User::default(), &stale), Err(UserError::NotFound));
    }

    #[test]
    fn a_release_reason_is_stored_only_when_there_is_one() {
        let s = Uuid::from_u128(71);
        let (t, plain) = encode(&UserEvent::ConversationReleased { session_id: s, reason: None });
        assert_eq!(t, "ConversationReleased");
        assert_eq!(plain, serde_json::json!({ "session_id": s }), "old events are unchanged");
        assert_eq!(
            decode::<UserEvent>(&t, &plain).unwrap(),
            UserEvent::ConversationReleased { session_id: s, reason: None }
        );
        let stale = UserEvent::ConversationReleased { session_id: s, reason: Some(ReleaseReason::Unconfirmed) };
        let (_, data) = encode(&stale);
        assert_eq!(data, serde_json::json!({ "session_id": s, "reason": "unconfirmed" }));
        assert_eq!(decode::<UserEvent>(&t, &data).unwrap(), stale);
    }

    #[test]
    fn commands_on_a_missing_user_are_not_found() {
        assert_eq!(set_status(&User::default(), Status::Online, StatusReason::Chosen), Err(UserError::NotFound));
        assert_eq!(deactivate(&User::default()), Err(UserError::NotFound));
    }

    #[test]
    fn events_round_trip_through_their_stored_form_and_secrets_are_redacted() {
        for e in ada() {
            let (t, mut data) = encode(&e);
            assert_eq!(t, "UserCreated");
            assert_eq!(decode::<UserEvent>(&t, &data).unwrap(), e);
            redact(&t, &mut data);
            assert_eq!(data["password_hash"], "[redacted]");
            assert_eq!(data["login"], "ada@example.com");
        }
    }
}

/// A login (email) claimed by one user: its stream (`login-<email>`) is created at most once,
/// which keeps logins unique across users without a lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Login {
    pub owner: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum LoginEvent {
    LoginClaimed { user_id: Uuid },
}

crate::schema::schema_versions!(LoginEvent {
    LoginClaimed => 1,
});

impl Aggregate for Login {
    type Event = LoginEvent;
    const CATEGORY: &'static str = "login";

    fn apply(&mut self, e: &LoginEvent) {
        match e {
            LoginEvent::LoginClaimed { user_id } => self.owner = Some(*user_id),
        }
    }
}

/// Why a login cannot be claimed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoginError {
    /// 409
    #[error("this login is already used by another user")]
    Taken,
}

/// Claims a login for `user_id`; claiming it again for the same user changes nothing.
pub fn claim_login(state: &Login, user_id: Uuid) -> Result<Vec<LoginEvent>, LoginError> {
    match state.owner {
        None => Ok(vec![LoginEvent::LoginClaimed { user_id }]),
        Some(owner) if owner == user_id => Ok(vec![]),
        Some(_) => Err(LoginError::Taken),
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn a_login_belongs_to_one_user() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let claimed = Login::from_history(&claim_login(&Login::default(), a).unwrap());
        assert_eq!(claim_login(&claimed, a), Ok(vec![]));
        assert_eq!(claim_login(&claimed, b), Err(LoginError::Taken));
    }
}
