//! Canned responses: a shortcut (typed as `:shortcut`) and the text that replaces it.
//!
//! Each response has its own stream (`canned-<uuid>`). A shortcut is unique per owner the
//! way logins are unique: its claim stream (`shortcut-<owner>:<shortcut>`, [`Shortcut`]) is
//! claimed before the response is created or renamed, and released when it is deleted or
//! renamed, so no lock and no view is needed to keep it unique.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::Audited;
use crate::event::Aggregate;
use crate::values::Invalid;

/// Longest shortcut, in characters.
pub const MAX_SHORTCUT_CHARS: usize = 40;
/// Longest replacement text, in characters (a message's maximum).
pub const MAX_TEXT_CHARS: usize = 4000;

/// What happened to a canned response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum CannedEvent {
    CannedResponseCreated {
        canned_id: Uuid,
        owner_id: Uuid,
        /// Lower case, without the leading `:`.
        shortcut: String,
        text: String,
        /// Offered to every operator, not only its owner.
        shared: bool,
    },
    CannedResponseEdited {
        shortcut: String,
        text: String,
    },
    CannedResponseShared {},
    CannedResponseUnshared {},
    CannedResponseDeleted {},
    /// An operator posted it in a conversation.
    CannedResponseUsed {
        by: Uuid,
        session_id: Uuid,
        at: DateTime<Utc>,
    },
}

crate::schema::schema_versions!(CannedEvent {
    CannedResponseCreated => 1,
    CannedResponseEdited => 1,
    CannedResponseShared => 1,
    CannedResponseUnshared => 1,
    CannedResponseDeleted => 1,
    CannedResponseUsed => 1,
});

/// A canned response as rebuilt from its stream (serialized by the audit projector: a change
/// of shape needs its version bumped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CannedResponse {
    pub id: Option<Uuid>,
    pub owner_id: Uuid,
    pub shortcut: String,
    pub text: String,
    pub shared: bool,
    pub deleted: bool,
    pub use_count: u64,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl CannedResponse {
    /// Created and not deleted.
    pub fn exists(&self) -> bool {
        self.id.is_some() && !self.deleted
    }

    /// May `user` post it? Its owner, and everyone when it is shared.
    pub fn usable_by(&self, user: Uuid) -> bool {
        self.exists() && (self.shared || self.owner_id == user)
    }
}

impl Aggregate for CannedResponse {
    type Event = CannedEvent;
    const CATEGORY: &'static str = "canned";

    fn apply(&mut self, e: &CannedEvent) {
        match e {
            CannedEvent::CannedResponseCreated { canned_id, owner_id, shortcut, text, shared } => {
                *self = CannedResponse {
                    id: Some(*canned_id),
                    owner_id: *owner_id,
                    shortcut: shortcut.clone(),
                    text: text.clone(),
                    shared: *shared,
                    ..Default::default()
                }
            }
            CannedEvent::CannedResponseEdited { shortcut, text } => {
                self.shortcut = shortcut.clone();
                self.text = text.clone();
            }
            CannedEvent::CannedResponseShared {} => self.shared = true,
            CannedEvent::CannedResponseUnshared {} => self.shared = false,
            CannedEvent::CannedResponseDeleted {} => self.deleted = true,
            CannedEvent::CannedResponseUsed { at, .. } => {
                self.use_count += 1;
                self.last_used_at = Some(*at);
            }
        }
    }
}

impl Audited for CannedResponse {
    /// Owner, shortcut, text, shared, deleted, and how often and when it was last used.
    fn audit_view(&self) -> serde_json::Value {
        if self.id.is_none() {
            return serde_json::Value::Null;
        }
        serde_json::json!({
            "owner_id": self.owner_id,
            "shortcut": self.shortcut,
            "text": self.text,
            "shared": self.shared,
            "deleted": self.deleted,
            "use_count": self.use_count,
            "last_used_at": self.last_used_at,
        })
    }
}

/// Why a canned-response command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CannedError {
    /// 404 (also once deleted)
    #[error("no such canned response")]
    NotFound,
    /// 409
    #[error("this canned response already exists")]
    AlreadyExists,
    /// 403
    #[error("only its owner or an administrator may change this canned response")]
    NotYours,
    /// 403
    #[error("only an administrator may share a canned response with every operator")]
    OnlyAdminsShare,
    /// 422
    #[error("invalid canned response")]
    Invalid(Vec<Invalid>),
}

/// Who asks for a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Editor {
    pub user_id: Uuid,
    pub admin: bool,
}

/// A shortcut as typed (`:Hello` or `hello`): lower case, without the `:`; letters, digits,
/// `_`, `-` and `.` only, so that `:shortcut` is one word and fits in a stream id.
pub fn shortcut(raw: &str) -> Result<String, Invalid> {
    let s = raw.trim();
    let s = s.strip_prefix(':').unwrap_or(s).to_lowercase();
    if s.is_empty() {
        return Err(Invalid::new("shortcut", "is required"));
    }
    if s.chars().count() > MAX_SHORTCUT_CHARS {
        return Err(Invalid::new("shortcut", format!("is longer than {MAX_SHORTCUT_CHARS} characters")));
    }
    if !s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(Invalid::new("shortcut", "may only hold letters, digits, '_', '-' and '.' (no spaces)"));
    }
    Ok(s)
}

/// The replacement text: not blank, at most 4,000 characters, kept verbatim (it becomes a
/// message as typed).
pub fn replacement(raw: &str) -> Result<String, Invalid> {
    if raw.trim().is_empty() {
        return Err(Invalid::new("text", "is required"));
    }
    if raw.chars().count() > MAX_TEXT_CHARS {
        return Err(Invalid::new("text", format!("is longer than {MAX_TEXT_CHARS} characters")));
    }
    if raw.contains('\0') {
        return Err(Invalid::new("text", "contains a NUL character"));
    }
    Ok(raw.to_string())
}

/// A new canned response as submitted, before validation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCanned {
    pub canned_id: Uuid,
    pub owner_id: Uuid,
    pub shortcut: String,
    pub text: String,
    pub shared: bool,
}

/// Creates a response for `new.owner_id` (someone else's only for an administrator; shared
/// only by an administrator). The caller claims the shortcut first.
pub fn create(state: &CannedResponse, by: Editor, new: &NewCanned) -> Result<Vec<CannedEvent>, CannedError> {
    if state.id.is_some() {
        return Err(CannedError::AlreadyExists);
    }
    if new.owner_id != by.user_id && !by.admin {
        return Err(CannedError::NotYours);
    }
    if new.shared && !by.admin {
        return Err(CannedError::OnlyAdminsShare);
    }
    let mut errors = Vec::new();
    let sc = shortcut(&new.shortcut).map_err(|e| errors.push(e)).ok();
    let text = replacement(&new.text).map_err(|e| errors.push(e)).ok();
    match (sc, text) {
        (Some(shortcut), Some(text)) => Ok(vec![CannedEvent::CannedResponseCreated {
            canned_id: new.canned_id,
            owner_id: new.owner_id,
            shortcut,
            text,
            shared: new.shared,
        }]),
        _ => Err(CannedError::Invalid(errors)),
    }
}

fn editable(state: &CannedResponse, by: Editor) -> Result<(), CannedError> {
    if !state.exists() {
        return Err(CannedError::NotFound);
    }
    if state.owner_id != by.user_id && !by.admin {
        return Err(CannedError::NotYours);
    }
    Ok(())
}

/// Changes the shortcut and/or text (absent ones keep their value). A new shortcut must
/// have been claimed by the caller first.
pub fn edit(
    state: &CannedResponse,
    by: Editor,
    new_shortcut: Option<&str>,
    new_text: Option<&str>,
) -> Result<Vec<CannedEvent>, CannedError> {
    editable(state, by)?;
    let mut errors = Vec::new();
    let sc = new_shortcut.map(shortcut).transpose().map_err(|e| errors.push(e)).ok().flatten();
    let text = new_text.map(replacement).transpose().map_err(|e| errors.push(e)).ok().flatten();
    if !errors.is_empty() {
        return Err(CannedError::Invalid(errors));
    }
    let shortcut = sc.unwrap_or_else(|| state.shortcut.clone());
    let text = text.unwrap_or_else(|| state.text.clone());
    if shortcut == state.shortcut && text == state.text {
        return Ok(vec![]);
    }
    Ok(vec![CannedEvent::CannedResponseEdited { shortcut, text }])
}

/// Shares the response with every operator, or takes it back (administrators only).
pub fn set_shared(state: &CannedResponse, by: Editor, shared: bool) -> Result<Vec<CannedEvent>, CannedError> {
    editable(state, by)?;
    if !by.admin {
        return Err(CannedError::OnlyAdminsShare);
    }
    Ok(match (state.shared, shared) {
        (false, true) => vec![CannedEvent::CannedResponseShared {}],
        (true, false) => vec![CannedEvent::CannedResponseUnshared {}],
        _ => vec![],
    })
}

/// Deletes the response (the caller then releases its shortcut); deleting twice is 404.
pub fn delete(state: &CannedResponse, by: Editor) -> Result<Vec<CannedEvent>, CannedError> {
    editable(state, by)?;
    Ok(vec![CannedEvent::CannedResponseDeleted {}])
}

/// Counts a use by `by` in a conversation: only a response `by` may use.
pub fn use_in(
    state: &CannedResponse,
    by: Uuid,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<CannedEvent>, CannedError> {
    if !state.usable_by(by) {
        return Err(CannedError::NotFound);
    }
    Ok(vec![CannedEvent::CannedResponseUsed { by, session_id, at }])
}

// ---------------------------------------------------------------------------------------------
// Shortcut claims

/// One owner's shortcut, held by at most one of their canned responses at a time. Stream
/// `shortcut-<owner>:<shortcut>` (see [`claim_stream_key`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shortcut {
    pub holder: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum ShortcutEvent {
    ShortcutClaimed { canned_id: Uuid },
    ShortcutReleased { canned_id: Uuid },
}

crate::schema::schema_versions!(ShortcutEvent {
    ShortcutClaimed => 1,
    ShortcutReleased => 1,
});

impl Aggregate for Shortcut {
    type Event = ShortcutEvent;
    const CATEGORY: &'static str = "shortcut";

    fn apply(&mut self, e: &ShortcutEvent) {
        match e {
            ShortcutEvent::ShortcutClaimed { canned_id } => self.holder = Some(*canned_id),
            ShortcutEvent::ShortcutReleased { .. } => self.holder = None,
        }
    }
}

/// The id part of a claim stream: the owner and the normalised shortcut.
pub fn claim_stream_key(owner_id: Uuid, shortcut: &str) -> String {
    format!("{owner_id}:{shortcut}")
}

/// Why a shortcut cannot be claimed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShortcutError {
    /// 409
    #[error("this owner already has a canned response with this shortcut")]
    Taken,
}

/// Claims the shortcut for `canned_id`; claiming it again for the same response changes nothing.
pub fn claim(state: &Shortcut, canned_id: Uuid) -> Result<Vec<ShortcutEvent>, ShortcutError> {
    match state.holder {
        None => Ok(vec![ShortcutEvent::ShortcutClaimed { canned_id }]),
        Some(h) if h == canned_id => Ok(vec![]),
        Some(_) => Err(ShortcutError::Taken),
    }
}

/// Frees the shortcut if `canned_id` holds it (a release by anyone else changes nothing).
pub fn release(state: &Shortcut, canned_id: Uuid) -> Result<Vec<ShortcutEvent>, ShortcutError> {
    Ok(if state.holder == Some(canned_id) { vec![ShortcutEvent::ShortcutReleased { canned_id }] } else { vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, History};

    impl History for CannedEvent {
        type State = CannedResponse;
    }
    use crate::event::{decode, encode};
    use chrono::TimeZone;

    const ADA: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const ADMIN: Uuid = Uuid::from_u128(9);
    const HELLO: Uuid = Uuid::from_u128(100);

    fn operator(id: Uuid) -> Editor {
        Editor { user_id: id, admin: false }
    }

    fn admin() -> Editor {
        Editor { user_id: ADMIN, admin: true }
    }

    fn new(owner: Uuid, shortcut: &str, shared: bool) -> NewCanned {
        NewCanned {
            canned_id: HELLO,
            owner_id: owner,
            shortcut: shortcut.into(),
            text: "Hello! How can I help you today?".into(),
            shared,
        }
    }

    /// Ada's `:hello`.
    fn hello() -> Vec<CannedEvent> {
        create(&CannedResponse::default(), operator(ADA), &new(ADA, ":Hello", false)).unwrap()
    }

    #[test]
    fn an_operator_creates_their_own_response_with_a_normalised_shortcut() {
        let events = hello();
        assert_eq!(
            events,
            vec![CannedEvent::CannedResponseCreated {
                canned_id: HELLO,
                owner_id: ADA,
                shortcut: "hello".into(),
                text: "Hello! How can I help you today?".into(),
                shared: false,
            }]
        );
        let r = given(&events);
        assert!(r.exists() && r.usable_by(ADA) && !r.usable_by(BOB));
        assert_eq!(create(&r, operator(ADA), &new(ADA, "hello", false)), Err(CannedError::AlreadyExists));
    }

    #[test]
    fn operators_cannot_create_for_others_nor_share_admins_can() {
        let empty = CannedResponse::default();
        assert_eq!(create(&empty, operator(ADA), &new(BOB, "hi", false)), Err(CannedError::NotYours));
        assert_eq!(create(&empty, operator(ADA), &new(ADA, "hi", true)), Err(CannedError::OnlyAdminsShare));
        let shared = create(&empty, admin(), &new(BOB, "hi", true)).unwrap();
        let r = given(&shared);
        assert_eq!(r.owner_id, BOB);
        assert!(r.usable_by(ADA), "shared with every operator");
    }

    #[test]
    fn invalid_shortcut_and_text_are_all_reported() {
        let bad = NewCanned { shortcut: "two words".into(), text: "  ".into(), ..new(ADA, "", false) };
        let Err(CannedError::Invalid(errors)) = create(&CannedResponse::default(), operator(ADA), &bad) else {
            panic!("expected invalid")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["shortcut", "text"]);
    }

    #[test]
    fn shortcuts_are_one_bounded_word() {
        assert_eq!(shortcut("  :Merci.Beaucoup ").unwrap(), "merci.beaucoup");
        assert_eq!(shortcut("ça_va-1").unwrap(), "ça_va-1");
        for bad in ["", ":", "a b", "a:b", "a/b", "a\tb", &"x".repeat(41)] {
            assert!(shortcut(bad).is_err(), "{bad:?}");
        }
        assert!(shortcut(&"x".repeat(40)).is_ok());
        assert!(replacement(&"x".repeat(4000)).is_ok());
        assert!(replacement(&"x".repeat(4001)).is_err());
        assert_eq!(replacement("Line 1\nLine 2").unwrap(), "Line 1\nLine 2", "kept verbatim");
    }

    #[test]
    fn the_owner_or_an_admin_edits_others_cannot() {
        let history = hello();
        let r = given(&history);
        assert_eq!(edit(&r, operator(BOB), None, Some("Hi")), Err(CannedError::NotYours));
        let events = edit(&r, operator(ADA), Some("hi"), None).unwrap();
        assert_eq!(
            events,
            vec![CannedEvent::CannedResponseEdited {
                shortcut: "hi".into(),
                text: "Hello! How can I help you today?".into()
            }]
        );
        assert!(edit(&r, admin(), None, Some("Hello.")).is_ok());
        assert_eq!(edit(&r, operator(ADA), Some(":HELLO"), None), Ok(vec![]), "no change, no event");
        assert!(matches!(edit(&r, operator(ADA), None, Some("")), Err(CannedError::Invalid(_))));
    }

    #[test]
    fn only_admins_share_and_unshare() {
        let mut history = hello();
        assert_eq!(set_shared(&given(&history), operator(ADA), true), Err(CannedError::OnlyAdminsShare));
        history.extend(set_shared(&given(&history), admin(), true).unwrap());
        assert!(given(&history).usable_by(BOB));
        assert_eq!(set_shared(&given(&history), admin(), true), Ok(vec![]));
        history.extend(set_shared(&given(&history), admin(), false).unwrap());
        assert!(!given(&history).usable_by(BOB));
    }

    #[test]
    fn uses_are_counted_for_those_who_may_use_it() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let session = Uuid::from_u128(50);
        let mut history = hello();
        assert_eq!(use_in(&given(&history), BOB, session, at), Err(CannedError::NotFound), "not Bob's");
        history.extend(use_in(&given(&history), ADA, session, at).unwrap());
        history.extend(use_in(&given(&history), ADA, session, at).unwrap());
        let r = given(&history);
        assert_eq!((r.use_count, r.last_used_at), (2, Some(at)));
    }

    #[test]
    fn a_deleted_response_is_gone() {
        let mut history = hello();
        assert_eq!(delete(&given(&history), operator(BOB)), Err(CannedError::NotYours));
        history.extend(delete(&given(&history), operator(ADA)).unwrap());
        let r = given(&history);
        assert!(!r.exists());
        assert_eq!(delete(&r, operator(ADA)), Err(CannedError::NotFound));
        assert_eq!(edit(&r, admin(), None, Some("x")), Err(CannedError::NotFound));
        assert_eq!(use_in(&r, ADA, Uuid::from_u128(50), Utc::now()), Err(CannedError::NotFound));
        assert_eq!(create(&r, operator(ADA), &new(ADA, "hello", false)), Err(CannedError::AlreadyExists));
    }

    #[test]
    fn a_shortcut_is_held_by_one_response_until_released() {
        let other = Uuid::from_u128(101);
        let claimed = Shortcut::from_history(&claim(&Shortcut::default(), HELLO).unwrap());
        assert_eq!(claim(&claimed, HELLO), Ok(vec![]), "claiming again changes nothing");
        assert_eq!(claim(&claimed, other), Err(ShortcutError::Taken), "duplicate shortcut");
        assert_eq!(release(&claimed, other), Ok(vec![]), "only the holder releases");
        let released = Shortcut::from_history(
            claim(&Shortcut::default(), HELLO).unwrap().iter().chain(&release(&claimed, HELLO).unwrap()),
        );
        assert_eq!(claim(&released, other), Ok(vec![ShortcutEvent::ShortcutClaimed { canned_id: other }]));
        assert_eq!(claim_stream_key(ADA, "hello"), format!("{ADA}:hello"));
    }

    #[test]
    fn events_round_trip_through_their_stored_form() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let mut all = hello();
        all.push(CannedEvent::CannedResponseUsed { by: ADA, session_id: Uuid::from_u128(50), at });
        all.push(CannedEvent::CannedResponseDeleted {});
        for e in all {
            let (t, data) = encode(&e);
            assert_eq!(decode::<CannedEvent>(&t, &data).unwrap(), e);
        }
        let (t, data) = encode(&CannedEvent::CannedResponseShared {});
        assert_eq!((t.as_str(), data), ("CannedResponseShared", serde_json::json!({})));
    }
}
