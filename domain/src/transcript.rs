//! Transcripts by email: a conversation's transcript requested by its visitor (once it is
//! closed) or by one of its operators, then delivered by the outbox worker, which records
//! every attempt. One stream per conversation (`transcript-<session uuid>`) holds all the
//! transcripts asked for it, so the per-conversation limit is enforced by that stream's
//! expected version, even with several servers.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Aggregate;
use crate::session::{Session, SessionStatus};
pub use crate::values::recipient;
use crate::values::Invalid;

/// At most this many transcripts per conversation (Odoo has no limit: we do, against abuse
/// of the public route as a way to mail any address).
pub const MAX_PER_CONVERSATION: usize = 5;
/// Delivery attempts before giving up.
pub const MAX_ATTEMPTS: u32 = 6;
/// Wait after the first failed attempt; doubled after each one, capped at [`MAX_BACKOFF_SECS`].
pub const FIRST_BACKOFF_SECS: i64 = 30;
pub const MAX_BACKOFF_SECS: i64 = 3600;
/// Longest recorded delivery error or detail, in characters.
const MAX_DETAIL_CHARS: usize = 500;

/// Who asked for a transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requester {
    Visitor,
    Operator { id: Uuid },
}

/// How a transcript was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Handed to the configured SMTP server.
    Smtp,
    /// Written as an `.eml` file (no SMTP server configured).
    File,
}

/// What happened to the transcripts of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum TranscriptEvent {
    TranscriptRequested {
        transcript_id: Uuid,
        session_id: Uuid,
        /// The validated recipient.
        email: String,
        requested_by: Requester,
        /// When the first attempt is due (the request's time).
        requested_at: DateTime<Utc>,
    },
    /// A transient failure: tried again at `next_attempt_at`.
    TranscriptAttemptFailed { transcript_id: Uuid, attempt: u32, error: String, next_attempt_at: DateTime<Utc> },
    TranscriptDelivered {
        transcript_id: Uuid,
        attempt: u32,
        via: Delivery,
        /// The SMTP server's answer, or the file's name.
        detail: String,
    },
    /// No more attempts: after [`MAX_ATTEMPTS`], or at once on a permanent refusal.
    TranscriptGaveUp { transcript_id: Uuid, attempts: u32, error: String },
}

crate::schema::schema_versions!(TranscriptEvent {
    TranscriptRequested => 1,
    TranscriptAttemptFailed => 1,
    TranscriptDelivered => 1,
    TranscriptGaveUp => 1,
});

/// Where a transcript stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptStatus {
    Pending,
    Delivered,
    Failed,
}

/// One transcript as rebuilt from the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    pub transcript_id: Uuid,
    pub email: String,
    pub requested_by: Requester,
    pub requested_at: DateTime<Utc>,
    pub status: TranscriptStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_via: Option<Delivery>,
    pub detail: Option<String>,
}

/// The transcripts of one conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcripts {
    pub session_id: Option<Uuid>,
    /// By id; requests are few (at most [`MAX_PER_CONVERSATION`]).
    pub all: BTreeMap<Uuid, Transcript>,
}

impl Aggregate for Transcripts {
    type Event = TranscriptEvent;
    const CATEGORY: &'static str = "transcript";

    fn apply(&mut self, e: &TranscriptEvent) {
        match e {
            TranscriptEvent::TranscriptRequested { transcript_id, session_id, email, requested_by, requested_at } => {
                self.session_id = Some(*session_id);
                self.all.insert(
                    *transcript_id,
                    Transcript {
                        transcript_id: *transcript_id,
                        email: email.clone(),
                        requested_by: *requested_by,
                        requested_at: *requested_at,
                        status: TranscriptStatus::Pending,
                        attempts: 0,
                        next_attempt_at: *requested_at,
                        last_error: None,
                        delivered_via: None,
                        detail: None,
                    },
                );
            }
            TranscriptEvent::TranscriptAttemptFailed { transcript_id, attempt, error, next_attempt_at } => {
                if let Some(t) = self.all.get_mut(transcript_id) {
                    t.attempts = *attempt;
                    t.last_error = Some(error.clone());
                    t.next_attempt_at = *next_attempt_at;
                }
            }
            TranscriptEvent::TranscriptDelivered { transcript_id, attempt, via, detail } => {
                if let Some(t) = self.all.get_mut(transcript_id) {
                    t.attempts = *attempt;
                    t.status = TranscriptStatus::Delivered;
                    t.delivered_via = Some(*via);
                    t.detail = Some(detail.clone());
                }
            }
            TranscriptEvent::TranscriptGaveUp { transcript_id, attempts, error } => {
                if let Some(t) = self.all.get_mut(transcript_id) {
                    t.attempts = *attempts;
                    t.status = TranscriptStatus::Failed;
                    t.last_error = Some(error.clone());
                }
            }
        }
    }
}

/// Why a transcript command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TranscriptError {
    /// 404
    #[error("no such conversation")]
    NoConversation,
    /// 404
    #[error("no such transcript")]
    NotFound,
    /// 409: a visitor gets the transcript of a finished conversation only.
    #[error("the conversation is still open: ask for its transcript once it has ended")]
    ConversationOpen,
    /// 403
    #[error("this conversation is not yours")]
    NotYours,
    /// 429
    #[error("at most {MAX_PER_CONVERSATION} transcripts may be sent per conversation")]
    TooMany,
    /// 409: a transcript id already used for another request.
    #[error("this transcript id is already used for another request")]
    IdReused,
    /// 409: the worker lost a race with another attempt's outcome.
    #[error("this transcript is no longer pending")]
    NotPending,
    /// 422
    #[error("{0}")]
    Invalid(#[from] Invalid),
}

/// A transcript request as the caller prepared it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub transcript_id: Uuid,
    pub email: String,
    pub by: Requester,
    /// An admin may ask for any conversation's transcript.
    pub admin: bool,
    pub now: DateTime<Utc>,
}

/// Asks for a transcript of `session`: its visitor once it is closed, its operators (anyone
/// who handled it) at any time, admins always; at most [`MAX_PER_CONVERSATION`] per
/// conversation. A retried request (same transcript id) changes nothing.
pub fn request(state: &Transcripts, session: &Session, r: Request) -> Result<Vec<TranscriptEvent>, TranscriptError> {
    let Some(session_id) = session.id else { return Err(TranscriptError::NoConversation) };
    match r.by {
        Requester::Visitor if session.status != SessionStatus::Closed => return Err(TranscriptError::ConversationOpen),
        Requester::Operator { id } if !r.admin && !session.handlers.contains(&id) => {
            return Err(TranscriptError::NotYours)
        }
        _ => {}
    }
    let email = recipient("email", &r.email)?;
    if let Some(t) = state.all.get(&r.transcript_id) {
        return if t.email == email && t.requested_by == r.by { Ok(vec![]) } else { Err(TranscriptError::IdReused) };
    }
    if state.all.len() >= MAX_PER_CONVERSATION {
        return Err(TranscriptError::TooMany);
    }
    Ok(vec![TranscriptEvent::TranscriptRequested {
        transcript_id: r.transcript_id,
        session_id,
        email,
        requested_by: r.by,
        requested_at: r.now,
    }])
}

/// The wait before attempt `failed + 1`: 30 s, 60 s, 120 s, ... at most an hour.
pub fn backoff(failed: u32) -> Duration {
    let exp = failed.saturating_sub(1).min(20);
    Duration::seconds((FIRST_BACKOFF_SECS << exp).min(MAX_BACKOFF_SECS))
}

/// The pending transcripts whose next attempt is due at `now`.
pub fn due(state: &Transcripts, now: DateTime<Utc>) -> Vec<&Transcript> {
    state.all.values().filter(|t| t.status == TranscriptStatus::Pending && t.next_attempt_at <= now).collect()
}

fn pending(state: &Transcripts, transcript_id: Uuid) -> Result<&Transcript, TranscriptError> {
    let t = state.all.get(&transcript_id).ok_or(TranscriptError::NotFound)?;
    if t.status != TranscriptStatus::Pending {
        return Err(TranscriptError::NotPending);
    }
    Ok(t)
}

fn clip(text: &str) -> String {
    // One line: server answers span several, and details end up in logs and documents.
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_DETAIL_CHARS).collect()
}

/// The worker delivered transcript `transcript_id`.
pub fn delivered(
    state: &Transcripts,
    transcript_id: Uuid,
    via: Delivery,
    detail: &str,
) -> Result<Vec<TranscriptEvent>, TranscriptError> {
    let t = pending(state, transcript_id)?;
    Ok(vec![TranscriptEvent::TranscriptDelivered { transcript_id, attempt: t.attempts + 1, via, detail: clip(detail) }])
}

/// An attempt failed: tried again after [`backoff`], unless the failure is `permanent` (the
/// server refused the address) or this was attempt [`MAX_ATTEMPTS`].
pub fn failed(
    state: &Transcripts,
    transcript_id: Uuid,
    error: &str,
    permanent: bool,
    now: DateTime<Utc>,
) -> Result<Vec<TranscriptEvent>, TranscriptError> {
    let t = pending(state, transcript_id)?;
    let attempt = t.attempts + 1;
    let error = clip(error);
    Ok(vec![if permanent || attempt >= MAX_ATTEMPTS {
        TranscriptEvent::TranscriptGaveUp { transcript_id, attempts: attempt, error }
    } else {
        TranscriptEvent::TranscriptAttemptFailed {
            transcript_id,
            attempt,
            error,
            next_attempt_at: now + backoff(attempt),
        }
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionEvent;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    const SESSION: Uuid = Uuid::from_u128(1);
    const ADA: Uuid = Uuid::from_u128(2);
    const BOB: Uuid = Uuid::from_u128(3);

    fn session(closed: bool) -> Session {
        let mut events = vec![
            SessionEvent::SessionStarted {
                session_id: SESSION,
                channel_id: Uuid::from_u128(9),
                visitor_name: "Marie".into(),
                anonymous: false,
                page_url: "/".into(),
                country: None,
                languages: vec![],
                visitor_token_sha256: String::new(),
            },
            SessionEvent::OperatorAssigned {
                operator_id: ADA,
                display_name: "Ada".into(),
                how: crate::session::Assignment::Routed,
            },
        ];
        if closed {
            events.push(SessionEvent::SessionClosed {
                by: crate::session::Party::Visitor,
                reason: crate::session::CloseReason::VisitorLeft,
                started_channel_id: None,
            });
        }
        Session::from_history(&events)
    }

    fn ask(id: u128, by: Requester, email: &str) -> Request {
        Request { transcript_id: Uuid::from_u128(100 + id), email: email.into(), by, admin: false, now: at(0) }
    }

    fn requested(id: u128) -> TranscriptEvent {
        TranscriptEvent::TranscriptRequested {
            transcript_id: Uuid::from_u128(100 + id),
            session_id: SESSION,
            email: "marie@example.com".into(),
            requested_by: Requester::Visitor,
            requested_at: at(0),
        }
    }

    #[test]
    fn addresses_are_a_careful_subset_of_rfc_5321() {
        assert_eq!(recipient("email", " Marie.Curie+chat@Example.ORG ").unwrap(), "Marie.Curie+chat@example.org");
        assert_eq!(recipient("email", "o'neil@mail.example.co.uk").unwrap(), "o'neil@mail.example.co.uk");
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b.".repeat(130));
        for bad in [
            "",
            "marie",
            "marie@",
            "@example.com",
            "marie@@example.com",
            "a@b@example.com",
            "marie curie@example.com",
            "marie@localhost",
            "marie@example..com",
            "marie@.example.com",
            "marie@example.com.",
            "marie@-example.com",
            "marie@exa_mple.com",
            "marie@127.0.0.1",
            "marie@[127.0.0.1]",
            ".marie@example.com",
            "ma..rie@example.com",
            "\"marie\"@example.com",
            "marie@exämple.com",
            "marie\r\n@example.com",
            "marie@example.com\r\nBcc: x@evil.com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            let e = recipient("email", bad).expect_err(bad);
            assert_eq!(e.field, "email");
        }
    }

    #[test]
    fn a_visitor_asks_for_the_transcript_of_a_closed_conversation() {
        let given = Transcripts::default();
        let then = request(&given, &session(true), ask(1, Requester::Visitor, "Marie@Example.com")).unwrap();
        assert_eq!(
            then,
            vec![TranscriptEvent::TranscriptRequested {
                transcript_id: Uuid::from_u128(101),
                session_id: SESSION,
                email: "Marie@example.com".into(),
                requested_by: Requester::Visitor,
                requested_at: at(0),
            }]
        );
    }

    #[test]
    fn a_visitor_waits_for_the_end_of_the_conversation() {
        let r = request(&Transcripts::default(), &session(false), ask(1, Requester::Visitor, "marie@example.com"));
        assert_eq!(r, Err(TranscriptError::ConversationOpen));
    }

    #[test]
    fn operators_of_the_conversation_and_admins_may_send_it_any_time() {
        let open = session(false);
        let by_ada = request(&Transcripts::default(), &open, ask(1, Requester::Operator { id: ADA }, "x@example.com"));
        assert_eq!(by_ada.unwrap().len(), 1);
        let by_bob = request(&Transcripts::default(), &open, ask(1, Requester::Operator { id: BOB }, "x@example.com"));
        assert_eq!(by_bob, Err(TranscriptError::NotYours));
        let admin = Request { admin: true, ..ask(1, Requester::Operator { id: BOB }, "x@example.com") };
        assert_eq!(request(&Transcripts::default(), &open, admin).unwrap().len(), 1);
    }

    #[test]
    fn refusals_come_before_anything_is_written() {
        let r = request(&Transcripts::default(), &session(true), ask(1, Requester::Visitor, "not an address"));
        assert!(matches!(r, Err(TranscriptError::Invalid(ref i)) if i.field == "email"), "{r:?}");
        let r = request(&Transcripts::default(), &Session::default(), ask(1, Requester::Visitor, "a@example.com"));
        assert_eq!(r, Err(TranscriptError::NoConversation));
    }

    #[test]
    fn at_most_five_per_conversation_and_a_retry_is_a_no_op() {
        let given = Transcripts::from_history(&(1..=5).map(requested).collect::<Vec<_>>());
        let sixth = request(&given, &session(true), ask(6, Requester::Visitor, "marie@example.com"));
        assert_eq!(sixth, Err(TranscriptError::TooMany));
        let retry = request(&given, &session(true), ask(5, Requester::Visitor, "marie@example.com"));
        assert_eq!(retry, Ok(vec![]));
        let reused = request(&given, &session(true), ask(5, Requester::Visitor, "other@example.com"));
        assert_eq!(reused, Err(TranscriptError::IdReused));
    }

    #[test]
    fn backoff_doubles_from_30_seconds_up_to_an_hour() {
        let secs: Vec<i64> = (1..=9).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(u32::MAX).num_seconds(), 3600);
    }

    #[test]
    fn a_transient_failure_schedules_the_next_attempt() {
        let given = Transcripts::from_history(&[requested(1)]);
        let id = Uuid::from_u128(101);
        assert_eq!(due(&given, at(0)).len(), 1);
        let then = failed(&given, id, "451 try again later", false, at(5)).unwrap();
        assert_eq!(
            then,
            vec![TranscriptEvent::TranscriptAttemptFailed {
                transcript_id: id,
                attempt: 1,
                error: "451 try again later".into(),
                next_attempt_at: at(35),
            }]
        );
        let state = Transcripts::from_history(&[requested(1), then[0].clone()]);
        assert!(due(&state, at(34)).is_empty(), "not before the backoff");
        assert_eq!(due(&state, at(35)).len(), 1);
        let then = delivered(&state, id, Delivery::Smtp, "250 queued as 42").unwrap();
        assert_eq!(
            then,
            vec![TranscriptEvent::TranscriptDelivered {
                transcript_id: id,
                attempt: 2,
                via: Delivery::Smtp,
                detail: "250 queued as 42".into(),
            }]
        );
        let done = Transcripts::from_history(&[requested(1), then[0].clone()]);
        assert!(due(&done, at(10_000)).is_empty());
        assert_eq!(delivered(&done, id, Delivery::Smtp, "again"), Err(TranscriptError::NotPending));
        assert_eq!(failed(&done, Uuid::from_u128(7), "x", false, at(0)), Err(TranscriptError::NotFound));
    }

    #[test]
    fn the_sixth_failure_or_a_permanent_one_gives_up() {
        let id = Uuid::from_u128(101);
        let mut history = vec![requested(1)];
        for n in 1..MAX_ATTEMPTS {
            let state = Transcripts::from_history(&history);
            let then = failed(&state, id, "451 later", false, at(n as i64)).unwrap();
            assert!(matches!(then[0], TranscriptEvent::TranscriptAttemptFailed { attempt, .. } if attempt == n));
            history.extend(then);
        }
        let state = Transcripts::from_history(&history);
        let then = failed(&state, id, "451 later", false, at(99)).unwrap();
        assert_eq!(
            then,
            vec![TranscriptEvent::TranscriptGaveUp { transcript_id: id, attempts: 6, error: "451 later".into() }]
        );
        let first = Transcripts::from_history(&[requested(1)]);
        let then = failed(&first, id, "550 no such user\nsecond line", true, at(0)).unwrap();
        assert_eq!(
            then,
            vec![TranscriptEvent::TranscriptGaveUp {
                transcript_id: id,
                attempts: 1,
                error: "550 no such user second line".into()
            }]
        );
        let gone = Transcripts::from_history(&[requested(1), then[0].clone()]);
        assert_eq!(gone.all[&id].status, TranscriptStatus::Failed);
        assert!(due(&gone, at(100_000)).is_empty(), "never tried again");
    }

    #[test]
    fn events_keep_their_stored_shape() {
        let (event_type, data) = crate::event::encode(&requested(1));
        assert_eq!(event_type, "TranscriptRequested");
        assert_eq!(
            data,
            serde_json::json!({
                "transcript_id": Uuid::from_u128(101),
                "session_id": SESSION,
                "email": "marie@example.com",
                "requested_by": {"kind": "visitor"},
                "requested_at": "2023-11-14T22:13:20Z"
            })
        );
        let back: TranscriptEvent = crate::event::decode(&event_type, &data).unwrap();
        assert_eq!(back, requested(1));
    }
}
