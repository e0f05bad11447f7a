//! Reports: one row per conversation (Odoo's `im_livechat.report.channel`), with what the
//! "Sessions" and "Operator Analysis" reports measure. Definitions: `docs/reports.md`.
//!
//! A row's sort key is the position of the last event that changed it, so a reader that
//! remembers the last key it saw can fetch only the rows changed since (the API keeps its
//! in-memory report index current that way).

use chrono::{DateTime, Datelike, Timelike, Utc};
use domain::session::{rating_label, CloseReason, Party, SessionEvent};
use serde::{Deserialize, Serialize};
use store::{Position, RecordedEvent};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

/// One document per conversation, id = session id, no partition.
pub const VIEW: &str = "report_conversations";

/// A conversation as the reports see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportRow {
    pub session_id: Uuid,
    /// The channel it started in, where it is counted (as the dashboard counts it).
    pub channel_id: Uuid,
    /// Every channel it was in, in order (transfers to another channel add one).
    pub channels: Vec<Uuid>,
    /// The operator handling it now (or last).
    pub operator_id: Option<Uuid>,
    /// Every operator who handled it, in the order they first did.
    pub operators: Vec<Uuid>,
    pub started_at: DateTime<Utc>,
    /// Hour of the start, 0-23, UTC.
    pub start_hour: u8,
    /// Day of the week of the start, 1 (Monday) to 7 (Sunday), UTC.
    pub start_weekday: u8,
    pub country: Option<String>,
    pub anonymous: bool,
    /// It waited in the queue at some point.
    pub queued: bool,
    /// Messages posted by anyone (welcome and deleted ones included; ratings are not messages).
    pub messages: u32,
    pub visitor_messages: u32,
    /// Distinct authors of messages other than the system (visitor, operators, bots).
    pub speakers: u32,
    pub first_message_at: Option<DateTime<Utc>>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub first_visitor_message_at: Option<DateTime<Utc>>,
    /// The first operator message, not the welcome, posted after the visitor's first message.
    pub first_answer_at: Option<DateTime<Utc>>,
    /// Last message minus first message, seconds (none without messages).
    pub duration_seconds: Option<f64>,
    /// `first_answer_at` minus `first_visitor_message_at`, seconds.
    pub time_to_answer_seconds: Option<f64>,
    pub answered: bool,
    /// 5, 3 or 1: the latest rating.
    pub rating: Option<u8>,
    /// Happy, Neutral or Unhappy.
    pub rating_text: Option<String>,
    pub closed: bool,
    /// Closed because the visitor never wrote.
    pub abandoned: bool,
    /// Authors counted in `speakers`: `visitor`, `operator:<id>`, `bot`.
    pub speaker_list: Vec<String>,
}

/// Who wrote a message, as reports tell them apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Author {
    Visitor,
    Operator(Uuid),
    /// A chatbot's step or remark: a speaker, never an answer.
    Bot,
    System,
}

impl Author {
    fn of(p: Party) -> Author {
        // Not a `match`: parties added later (a bot) are simply not visitors nor operators.
        if let Party::Operator { id } = p {
            Author::Operator(id)
        } else if p == Party::Visitor {
            Author::Visitor
        } else {
            Author::System
        }
    }

    fn speaker(self) -> Option<String> {
        match self {
            Author::Visitor => Some("visitor".into()),
            Author::Operator(id) => Some(format!("operator:{id}")),
            Author::Bot => Some("bot".into()),
            Author::System => None,
        }
    }
}

impl ReportRow {
    fn started(
        session_id: Uuid,
        channel_id: Uuid,
        at: DateTime<Utc>,
        country: Option<String>,
        anonymous: bool,
    ) -> Self {
        ReportRow {
            session_id,
            channel_id,
            channels: vec![channel_id],
            operator_id: None,
            operators: vec![],
            started_at: at,
            start_hour: at.hour() as u8,
            start_weekday: at.weekday().number_from_monday() as u8,
            country,
            anonymous,
            queued: false,
            messages: 0,
            visitor_messages: 0,
            speakers: 0,
            first_message_at: None,
            last_message_at: None,
            first_visitor_message_at: None,
            first_answer_at: None,
            duration_seconds: None,
            time_to_answer_seconds: None,
            answered: false,
            rating: None,
            rating_text: None,
            closed: false,
            abandoned: false,
            speaker_list: vec![],
        }
    }

    fn posted(&mut self, author: Author, welcome: bool, at: DateTime<Utc>) {
        self.messages += 1;
        self.first_message_at.get_or_insert(at);
        self.last_message_at = Some(at);
        if let Some(who) = author.speaker().filter(|w| !self.speaker_list.contains(w)) {
            self.speaker_list.push(who);
            self.speakers += 1;
        }
        match author {
            Author::Visitor => {
                self.visitor_messages += 1;
                self.first_visitor_message_at.get_or_insert(at);
            }
            Author::Operator(_) if !welcome && self.first_visitor_message_at.is_some() => {
                self.first_answer_at.get_or_insert(at);
            }
            // Bots and the system never answer.
            _ => {}
        }
        self.duration_seconds = self.duration_micros().map(seconds);
        self.answered = self.first_answer_at.is_some();
        self.time_to_answer_seconds = self.time_to_answer_micros().map(seconds);
    }

    /// `duration_seconds` exactly: last message minus first message, in microseconds. Reports
    /// sum these integers (never the rounded seconds), so their averages round exactly.
    pub fn duration_micros(&self) -> Option<i64> {
        self.first_message_at.zip(self.last_message_at).map(|(f, l)| micros(l - f))
    }

    /// `time_to_answer_seconds` exactly: first answer minus the visitor's first message.
    pub fn time_to_answer_micros(&self) -> Option<i64> {
        self.first_answer_at.zip(self.first_visitor_message_at).map(|(a, v)| micros(a - v))
    }
}

/// A span in whole microseconds (the store's precision).
fn micros(d: chrono::TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

/// Microseconds as seconds, for reading (exact to the microsecond below about 285 years).
pub fn seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// Sorts rows by the position of their last change.
pub fn change_key(p: Position) -> String {
    format!("{:020}.{:020}", p.tx, p.pos)
}

/// Builds [`ReportRow`]s from conversation streams.
pub struct Reports;

/// The event types that change a row; the others (edits, seen marks, pages...) are skipped
/// without decoding, so event types added later never trouble this projector.
const RELEVANT: &[&str] = &[
    "SessionStarted",
    "SessionQueued",
    "OperatorAssigned",
    "MessagePosted",
    "SessionTransferred",
    "SessionClosed",
    "ConversationRated",
    BOT_ANSWERED,
    BOT_STEP,
    BOT_SAID,
    BOT_RESTARTED,
];

/// Chatbot events that are messages, read by name so this projector does not depend on the
/// rest of their shape: the visitor's answer to a step, the bot's step and remarks, and the
/// "Restarting conversation..." system message.
const BOT_ANSWERED: &str = "ChatbotAnswered";
const BOT_STEP: &str = "ChatbotStepPosted";
const BOT_SAID: &str = "ChatbotSaid";
const BOT_RESTARTED: &str = "ChatbotRestarted";

/// The author of a chatbot event's message, if it is one.
fn bot_message(event_type: &str) -> Option<Author> {
    match event_type {
        BOT_ANSWERED => Some(Author::Visitor),
        BOT_STEP | BOT_SAID => Some(Author::Bot),
        BOT_RESTARTED => Some(Author::System),
        _ => None,
    }
}

fn session_of(e: &RecordedEvent) -> Option<&str> {
    if !RELEVANT.contains(&e.event_type.as_str()) {
        return None;
    }
    e.stream_id.strip_prefix("session-")
}

fn inconsistent(what: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Inconsistent(what.to_string())
}

impl Projector for Reports {
    fn name(&self) -> &'static str {
        "reports"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        session_of(e).map(|s| vec![(VIEW, s.to_string())]).unwrap_or_default()
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        let Some(id) = session_of(e) else { return Ok(()) };
        let at = e.recorded_at;
        if let Some(author) = bot_message(&e.event_type) {
            let Some(d) = docs.get(VIEW, id) else { return Ok(()) };
            let mut row: ReportRow = serde_json::from_value(d.body.clone())
                .map_err(|err| inconsistent(format!("stored report row unreadable: {err}")))?;
            row.posted(author, false, at);
            return put(docs, id, &row, e.position);
        }
        let event: SessionEvent = ProjectionError::domain_event(e)?;
        let mut row = match (&event, docs.get(VIEW, id)) {
            (SessionEvent::SessionStarted { session_id, channel_id, country, anonymous, .. }, _) => {
                ReportRow::started(*session_id, *channel_id, at, country.as_ref().map(|c| c.to_string()), *anonymous)
            }
            // Nothing to report about a conversation whose start this view never saw.
            (_, None) => return Ok(()),
            (_, Some(d)) => serde_json::from_value::<ReportRow>(d.body.clone())
                .map_err(|err| inconsistent(format!("stored report row unreadable: {err}")))?,
        };
        match event {
            SessionEvent::SessionQueued {} => {
                row.queued = true;
                row.operator_id = None;
            }
            SessionEvent::OperatorAssigned { operator_id, .. } => {
                row.operator_id = Some(operator_id);
                if !row.operators.contains(&operator_id) {
                    row.operators.push(operator_id);
                }
            }
            SessionEvent::MessagePosted { author, welcome, .. } => row.posted(Author::of(author), welcome, at),
            SessionEvent::SessionTransferred { to_channel, .. } => {
                row.operator_id = None;
                if row.channels.last() != Some(&to_channel) {
                    row.channels.push(to_channel);
                }
            }
            SessionEvent::SessionClosed { reason, .. } => {
                row.closed = true;
                row.abandoned = reason == CloseReason::Abandoned;
            }
            SessionEvent::ConversationRated { value, .. } => {
                row.rating = Some(value);
                row.rating_text = Some(rating_label(value).to_string());
            }
            _ => {}
        }
        put(docs, id, &row, e.position)
    }
}

fn put(docs: &mut Docs, id: &str, row: &ReportRow, at: Position) -> Result<(), ProjectionError> {
    let body = serde_json::to_value(row).map_err(inconsistent)?;
    docs.put(VIEW, id, Draft { partition: String::new(), sort_key: change_key(at), body });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::aggregate::{decode, encode};
    use domain::values::Country;
    use proptest::prelude::*;

    const SHOP: Uuid = Uuid::from_u128(10);
    const SUPPORT: Uuid = Uuid::from_u128(11);
    const ADA: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);

    fn t0() -> DateTime<Utc> {
        "2026-11-25T09:30:00Z".parse().unwrap() // a Wednesday
    }

    fn session(n: u128) -> Uuid {
        Uuid::from_u128(1000 + n)
    }

    fn recorded(n: u128, position: u64, e: &SessionEvent, at: DateTime<Utc>) -> RecordedEvent {
        let (event_type, data) = encode(e);
        RecordedEvent {
            position: Position::new(0, position),
            event_id: Uuid::now_v7(),
            stream_id: format!("session-{}", session(n)),
            stream_version: position,
            event_type,
            schema_version: 1,
            data,
            metadata: serde_json::json!({}),
            recorded_at: at,
        }
    }

    fn raw(n: u128, position: u64, event_type: &str, at: DateTime<Utc>) -> RecordedEvent {
        let mut e = recorded(n, position, &SessionEvent::SessionQueued {}, at);
        e.event_type = event_type.into();
        e.data = serde_json::json!({ "message_id": Uuid::from_u128(n), "text": "bot" });
        e
    }

    fn started(n: u128, country: Option<&str>) -> SessionEvent {
        SessionEvent::SessionStarted {
            session_id: session(n),
            channel_id: SHOP,
            visitor_name: "Visitor #1".into(),
            anonymous: true,
            page_url: "/".into(),
            country: country.map(|c| Country::parse("country", c).unwrap()),
            languages: vec![],
            visitor_token_sha256: String::new(),
        }
    }

    fn post(author: Party, welcome: bool) -> SessionEvent {
        SessionEvent::MessagePosted { message_id: Uuid::now_v7(), author, text: "x".into(), welcome }
    }

    fn assigned(operator_id: Uuid) -> SessionEvent {
        SessionEvent::OperatorAssigned {
            operator_id,
            display_name: "op".into(),
            how: domain::session::Assignment::Routed,
        }
    }

    /// Applies events as the runner does, loading the documents `keys` names first.
    fn project(docs: &mut Docs, events: &[RecordedEvent]) {
        for e in events {
            for (view, id) in Reports.keys(e) {
                if docs.get(view, &id).is_none() {
                    docs.load(view, id, None);
                }
            }
            Reports.apply(e, docs).unwrap();
        }
    }

    fn row(docs: &Docs, n: u128) -> Option<ReportRow> {
        docs.get(VIEW, &session(n).to_string()).map(|d| serde_json::from_value(d.body.clone()).unwrap())
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(secs)
    }

    #[test]
    fn a_conversation_answered_after_a_welcome_and_a_transfer() {
        // Given: a welcome at 0 s, the visitor at 10 s, Ada at 25 s, a transfer to Bob, Bob at 70 s.
        let events = [
            recorded(1, 1, &started(1, Some("BE")), at(0)),
            recorded(1, 2, &assigned(ADA), at(0)),
            recorded(1, 3, &post(Party::Operator { id: ADA }, true), at(0)),
            recorded(1, 4, &post(Party::Visitor, false), at(10)),
            recorded(1, 5, &post(Party::Operator { id: ADA }, false), at(25)),
            recorded(1, 6, &SessionEvent::SessionTransferred { from_operator: Some(ADA), to_channel: SHOP }, at(30)),
            recorded(1, 7, &assigned(BOB), at(30)),
            recorded(1, 8, &post(Party::Operator { id: BOB }, false), at(70)),
            recorded(
                1,
                9,
                &SessionEvent::ConversationRated {
                    message_id: Uuid::from_u128(9),
                    value: 3,
                    feedback: None,
                    operator_id: ADA,
                    channel_id: SHOP,
                },
                at(80),
            ),
        ];
        let mut docs = Docs::default();
        project(&mut docs, &events);
        let r = row(&docs, 1).unwrap();
        assert_eq!((r.operator_id, r.operators.clone()), (Some(BOB), vec![ADA, BOB]));
        assert_eq!((r.messages, r.visitor_messages, r.speakers), (4, 1, 3));
        assert_eq!((r.duration_seconds, r.time_to_answer_seconds, r.answered), (Some(70.0), Some(15.0), true));
        assert_eq!((r.rating, r.rating_text.as_deref()), (Some(3), Some("Neutral")));
        assert_eq!((r.start_hour, r.start_weekday, r.country.as_deref()), (9, 3, Some("BE")));
        assert_eq!(docs.get(VIEW, &session(1).to_string()).unwrap().sort_key, change_key(Position::new(0, 9)));
    }

    #[test]
    fn a_queued_conversation_counts_from_the_visitors_first_message_and_bots_do_not_answer() {
        // Given: queued; the visitor writes at 5 s, the system at 6 s; Ada takes it and answers at 65 s.
        let events = [
            recorded(2, 1, &started(2, None), at(0)),
            recorded(2, 2, &SessionEvent::SessionQueued {}, at(0)),
            recorded(2, 3, &post(Party::Visitor, false), at(5)),
            recorded(2, 4, &post(Party::System, false), at(6)),
            recorded(2, 5, &assigned(ADA), at(60)),
            recorded(2, 6, &post(Party::Operator { id: ADA }, false), at(65)),
        ];
        let mut docs = Docs::default();
        project(&mut docs, &events[..4]);
        let before = row(&docs, 2).unwrap();
        assert_eq!((before.answered, before.time_to_answer_seconds, before.speakers), (false, None, 1));
        project(&mut docs, &events[4..]);
        let r = row(&docs, 2).unwrap();
        assert!(r.queued);
        assert_eq!((r.answered, r.time_to_answer_seconds, r.duration_seconds), (true, Some(60.0), Some(60.0)));
    }

    #[test]
    fn a_chatbot_speaks_but_never_answers_and_the_visitors_reply_to_it_is_their_first_message() {
        let events = [
            recorded(6, 1, &started(6, None), at(0)),
            raw(6, 2, "ChatbotStarted", at(0)),
            raw(6, 3, BOT_STEP, at(0)),
            raw(6, 4, BOT_ANSWERED, at(5)),
            raw(6, 5, BOT_STEP, at(6)),
            raw(6, 6, "ChatbotEnded", at(7)),
            recorded(6, 7, &assigned(ADA), at(7)),
            recorded(6, 8, &post(Party::Operator { id: ADA }, false), at(65)),
        ];
        let mut docs = Docs::default();
        project(&mut docs, &events);
        let r = row(&docs, 6).unwrap();
        assert_eq!((r.messages, r.visitor_messages, r.speakers), (4, 1, 3));
        assert_eq!((r.time_to_answer_seconds, r.duration_seconds), (Some(60.0), Some(65.0)));
        assert_eq!(r.speaker_list, ["bot", "visitor", &format!("operator:{ADA}")]);
    }

    #[test]
    fn an_abandoned_conversation_is_flagged_and_an_operator_message_before_the_visitor_is_no_answer() {
        let events = [
            recorded(3, 1, &started(3, None), at(0)),
            recorded(3, 2, &assigned(ADA), at(0)),
            recorded(3, 3, &post(Party::Operator { id: ADA }, false), at(1)),
            recorded(
                3,
                4,
                &SessionEvent::SessionClosed {
                    by: Party::System,
                    reason: CloseReason::Abandoned,
                    started_channel_id: None,
                },
                at(3600),
            ),
        ];
        let mut docs = Docs::default();
        project(&mut docs, &events);
        let r = row(&docs, 3).unwrap();
        assert_eq!((r.closed, r.abandoned, r.answered, r.visitor_messages), (true, true, false, 0));
    }

    #[test]
    fn events_it_does_not_report_on_are_skipped_without_decoding() {
        let mut e = recorded(4, 1, &SessionEvent::PageVisited { url: "/x".into() }, at(0));
        e.event_type = "BotStepReached".into(); // a type this build may not know
        e.data = serde_json::json!({ "anything": true });
        assert!(Reports.keys(&e).is_empty());
        Reports.apply(&e, &mut Docs::default()).unwrap();
        // An event of a conversation the view never saw start writes nothing.
        let orphan = recorded(5, 2, &post(Party::Visitor, false), at(0));
        let mut docs = Docs::default();
        project(&mut docs, &[orphan]);
        assert!(row(&docs, 5).is_none());
    }

    // ---- property: the projected rows equal a recomputation from the whole log ----

    #[derive(Clone, Debug)]
    enum Op {
        Queue,
        Assign(u8),
        Post(u8),
        Welcome(u8),
        Edit,
        Delete,
        Seen,
        Transfer(bool),
        Close(u8),
        Rate(u8),
        /// A chatbot event, by type (whatever shape the bot's events have, only the type counts).
        Bot(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Queue),
            (0u8..3).prop_map(Op::Assign),
            (0u8..6).prop_map(Op::Post),
            (0u8..3).prop_map(Op::Welcome),
            Just(Op::Edit),
            Just(Op::Delete),
            Just(Op::Seen),
            any::<bool>().prop_map(Op::Transfer),
            (0u8..3).prop_map(Op::Close),
            (0u8..3).prop_map(Op::Rate),
            (0u8..5).prop_map(Op::Bot),
        ]
    }

    fn operator(i: u8) -> Uuid {
        Uuid::from_u128(100 + i as u128)
    }

    fn author(i: u8) -> Party {
        match i {
            0 | 1 => Party::Visitor,
            5 => Party::System,
            i => Party::Operator { id: operator(i - 2) },
        }
    }

    const BOT_TYPES: [&str; 5] = [BOT_ANSWERED, BOT_STEP, BOT_SAID, BOT_RESTARTED, "ChatbotEnded"];

    fn event_of(op: &Op, n: u128, position: u64, at: DateTime<Utc>) -> RecordedEvent {
        let some_message = Uuid::from_u128(n);
        let e = match op {
            Op::Bot(i) => return raw(n, position, BOT_TYPES[*i as usize], at),
            Op::Queue => SessionEvent::SessionQueued {},
            Op::Assign(i) => assigned(operator(*i)),
            Op::Post(i) => post(author(*i), false),
            Op::Welcome(i) => post(Party::Operator { id: operator(*i) }, true),
            Op::Edit => SessionEvent::MessageEdited { message_id: some_message, text: "y".into() },
            Op::Delete => SessionEvent::MessageDeleted { message_id: some_message },
            Op::Seen => SessionEvent::MessagesSeen { by: Party::Visitor, up_to: some_message },
            Op::Transfer(other) => SessionEvent::SessionTransferred {
                from_operator: None,
                to_channel: if *other { SUPPORT } else { SHOP },
            },
            Op::Close(r) => SessionEvent::SessionClosed {
                by: Party::System,
                reason: [CloseReason::VisitorLeft, CloseReason::ClosedByOperator, CloseReason::Abandoned][*r as usize],
                started_channel_id: None,
            },
            Op::Rate(v) => SessionEvent::ConversationRated {
                message_id: some_message,
                value: [1, 3, 5][*v as usize],
                feedback: None,
                operator_id: operator(0),
                channel_id: SHOP,
            },
        };
        recorded(n, position, &e, at)
    }

    /// The row recomputed from one conversation's whole stream, by plain list queries.
    fn recompute(stream: &[RecordedEvent]) -> ReportRow {
        // Bot messages are read by type; the other bot events change nothing.
        let bot = |t: &str| match t {
            "ChatbotAnswered" => Some(Author::Visitor),
            "ChatbotStepPosted" | "ChatbotSaid" => Some(Author::Bot),
            "ChatbotRestarted" => Some(Author::System),
            _ => None,
        };
        let events: Vec<(SessionEvent, DateTime<Utc>)> = stream
            .iter()
            .map(|e| match bot(&e.event_type) {
                Some(a) => (SessionEvent::PageVisited { url: format!("{a:?}") }, e.recorded_at),
                None if e.event_type.starts_with("Chatbot") => {
                    (SessionEvent::PageVisited { url: "-".into() }, e.recorded_at)
                }
                None => (decode(&e.event_type, &e.data).unwrap(), e.recorded_at),
            })
            .collect();
        let (SessionEvent::SessionStarted { session_id, channel_id, country, anonymous, .. }, start) = &events[0]
        else {
            panic!("a stream starts with SessionStarted")
        };
        let posts: Vec<(usize, Author, bool, DateTime<Utc>)> = events
            .iter()
            .enumerate()
            .zip(stream)
            .filter_map(|((i, (e, t)), r)| match (e, bot(&r.event_type)) {
                (_, Some(a)) => Some((i, a, false, *t)),
                (SessionEvent::MessagePosted { author, welcome, .. }, _) => {
                    Some((i, Author::of(*author), *welcome, *t))
                }
                _ => None,
            })
            .collect();
        let first_visitor = posts.iter().find(|p| p.1 == Author::Visitor);
        let first_answer = first_visitor
            .and_then(|v| posts.iter().find(|p| p.0 > v.0 && matches!(p.1, Author::Operator(_)) && !p.2).map(|p| p.3));
        let mut speakers: Vec<String> = vec![];
        for p in &posts {
            let who = match p.1 {
                Author::Visitor => "visitor".to_string(),
                Author::Operator(id) => format!("operator:{id}"),
                Author::Bot => "bot".to_string(),
                Author::System => continue,
            };
            if !speakers.contains(&who) {
                speakers.push(who);
            }
        }
        let mut channels = vec![*channel_id];
        let mut operators = vec![];
        for (e, _) in &events {
            match e {
                SessionEvent::SessionTransferred { to_channel, .. } if channels.last() != Some(to_channel) => {
                    channels.push(*to_channel)
                }
                SessionEvent::OperatorAssigned { operator_id, .. } if !operators.contains(operator_id) => {
                    operators.push(*operator_id)
                }
                _ => {}
            }
        }
        let operator_id = events.iter().rev().find_map(|(e, _)| match e {
            SessionEvent::OperatorAssigned { operator_id, .. } => Some(Some(*operator_id)),
            SessionEvent::SessionQueued {} | SessionEvent::SessionTransferred { .. } => Some(None),
            _ => None,
        });
        let rating = events.iter().rev().find_map(|(e, _)| match e {
            SessionEvent::ConversationRated { value, .. } => Some(*value),
            _ => None,
        });
        let last_close = events.iter().rev().find_map(|(e, _)| match e {
            SessionEvent::SessionClosed { reason, .. } => Some(*reason),
            _ => None,
        });
        let first_message = posts.first().map(|p| p.3);
        let last_message = posts.last().map(|p| p.3);
        ReportRow {
            session_id: *session_id,
            channel_id: *channel_id,
            channels,
            operator_id: operator_id.flatten(),
            operators,
            started_at: *start,
            start_hour: start.hour() as u8,
            start_weekday: start.weekday().number_from_monday() as u8,
            country: country.as_ref().map(|c| c.as_str().to_string()),
            anonymous: *anonymous,
            queued: events.iter().any(|(e, _)| matches!(e, SessionEvent::SessionQueued {})),
            messages: posts.len() as u32,
            visitor_messages: posts.iter().filter(|p| p.1 == Author::Visitor).count() as u32,
            speakers: speakers.len() as u32,
            first_message_at: first_message,
            last_message_at: last_message,
            first_visitor_message_at: first_visitor.map(|v| v.3),
            first_answer_at: first_answer,
            duration_seconds: first_message.zip(last_message).map(|(f, l)| seconds(micros(l - f))),
            time_to_answer_seconds: first_answer.zip(first_visitor).map(|(a, v)| seconds(micros(a - v.3))),
            answered: first_answer.is_some(),
            rating,
            rating_text: rating.map(|v| rating_label(v).to_string()),
            closed: last_close.is_some(),
            abandoned: last_close == Some(CloseReason::Abandoned),
            speaker_list: speakers,
        }
    }

    proptest! {
        #[test]
        fn projected_rows_equal_a_recomputation_from_the_log(
            steps in proptest::collection::vec((0u128..4, op(), 0i64..5_000_000), 0..80),
            start_offset in 0i64..(14 * 86_400_000),
        ) {
            // Interleaved conversations: each starts at its first step; the clock only moves on.
            let mut log: Vec<RecordedEvent> = vec![];
            let mut clock = t0() + chrono::Duration::milliseconds(start_offset);
            let mut begun = [false; 4];
            for (n, op, wait) in &steps {
                clock += chrono::Duration::milliseconds(*wait);
                if !begun[*n as usize] {
                    begun[*n as usize] = true;
                    let country = if n % 2 == 0 { Some("FR") } else { None };
                    log.push(recorded(*n, log.len() as u64 + 1, &started(*n, country), clock));
                }
                let e = event_of(op, *n, log.len() as u64 + 1, clock);
                log.push(e);
            }
            let mut docs = Docs::default();
            project(&mut docs, &log);
            for n in 0..4u128 {
                let stream: Vec<RecordedEvent> =
                    log.iter().filter(|e| e.stream_id == format!("session-{}", session(n))).cloned().collect();
                if stream.is_empty() {
                    prop_assert!(row(&docs, n).is_none());
                    continue;
                }
                prop_assert_eq!(row(&docs, n).unwrap(), recompute(&stream));
                let last_change = stream.iter().rev().find(|e| RELEVANT.contains(&e.event_type.as_str())).unwrap();
                prop_assert_eq!(&docs.get(VIEW, &session(n).to_string()).unwrap().sort_key, &change_key(last_change.position));
            }
        }
    }
}
