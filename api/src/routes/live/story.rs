//! The conversations the unit tests of the stream tell (test-only).

use domain::aggregate::Aggregate;
use domain::session::{post, start, Party, Session, SessionEvent, Start};
use uuid::Uuid;

pub const ADA: Uuid = Uuid::from_u128(1);
pub const BOB: Uuid = Uuid::from_u128(2);
pub const CAROL: Uuid = Uuid::from_u128(3);
pub const BOSS: Uuid = Uuid::from_u128(4);
pub const SUPPORT: Uuid = Uuid::from_u128(10);
pub const SALES: Uuid = Uuid::from_u128(11);
pub const S1: Uuid = Uuid::from_u128(100);
pub const S2: Uuid = Uuid::from_u128(101);

pub fn op(id: Uuid) -> Party {
    Party::Operator { id }
}

/// A conversation told as decisions on its folded state.
pub struct Story(pub Vec<SessionEvent>);

impl Story {
    pub fn begin(operator: Option<Uuid>) -> Story {
        let s = Start {
            session_id: S1,
            channel_id: SUPPORT,
            visitor_name: None,
            visitor_number: 1,
            page_url: "/".into(),
            country: None,
            languages: vec![],
            visitor_token_sha256: "digest".into(),
            operator: operator.map(|o| (o, "Someone".into())),
            welcome_message_id: Uuid::from_u128(500),
            welcome_text: "Hello".into(),
        };
        Story(start(&Session::default(), s).unwrap())
    }

    pub fn then(mut self, decide: impl Fn(&Session) -> Vec<SessionEvent>) -> Story {
        let more = decide(&Session::from_history(&self.0));
        assert!(!more.is_empty(), "the story needs events");
        self.0.extend(more);
        self
    }

    pub fn says(self, party: Party, n: u128) -> Story {
        self.then(|s| post(s, party, Uuid::from_u128(600 + n), "text").unwrap())
    }
}
