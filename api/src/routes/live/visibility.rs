//! Who sees what: a pure function of the viewer, the event and the state folded just before it.

use domain::aggregate::Aggregate;
use domain::channel::{Channel, ChannelEvent};
use domain::session::{Session, SessionEvent};
use uuid::Uuid;

/// Who holds the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// A visitor, for their one conversation.
    Visitor {
        session_id: Uuid,
    },
    Operator {
        user_id: Uuid,
    },
    Admin {
        user_id: Uuid,
    },
}

/// What a connection remembers of a conversation: the domain's state (without messages and
/// pages, which visibility does not need) and whether it waits in its channel's queue (queued,
/// and not yet assigned, transferred or closed since).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversation {
    pub session: Session,
    pub queued: bool,
}

impl Conversation {
    pub fn apply(&mut self, e: &SessionEvent) {
        self.queued = match e {
            SessionEvent::SessionQueued {} => true,
            SessionEvent::SessionStarted { .. }
            | SessionEvent::OperatorAssigned { .. }
            | SessionEvent::SessionTransferred { .. }
            | SessionEvent::SessionClosed { .. } => false,
            _ => self.queued,
        };
        self.session.apply(e);
        self.session.messages = Vec::new();
        self.session.pages = Vec::new();
    }
}

/// An event with what the connection knew just before it.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Session {
        session_id: Uuid,
        before: &'a Conversation,
        event: &'a SessionEvent,
        /// The conversation's next event, when the event is its `SessionStarted` (the same
        /// append says whether it was routed or queued).
        next: Option<&'a SessionEvent>,
        /// Whether the viewer is an operator of the conversation's channel at this point
        /// (its `channel_id` for a `SessionStarted`, the channel it was in otherwise).
        in_my_channel: bool,
    },
    Channel {
        before: &'a Channel,
        event: &'a ChannelEvent,
    },
    /// Users, logins and anything else: never on the stream.
    Other,
}

/// May `viewer` see this event?
///
/// * A visitor: the events of their own conversation.
/// * An operator: every event of a conversation while it is theirs (from the assignment, or
///   the start that routes it to them, up to and including the transfer that takes it away,
///   and what follows its close); in the channels where they are an operator, the queue: the
///   start of a conversation that is queued at once, `SessionQueued`, and what takes a queued
///   conversation out of the queue (`OperatorAssigned`, `SessionTransferred`, `SessionClosed`);
///   `OperatorJoined`/`OperatorLeft` of those channels (and their own).
/// * An admin: every conversation and channel event.
pub fn visible(viewer: Viewer, subject: &Subject<'_>) -> bool {
    use SessionEvent as S;
    match (viewer, subject) {
        (Viewer::Admin { .. }, Subject::Session { .. } | Subject::Channel { .. }) => true,
        (Viewer::Visitor { session_id: mine }, Subject::Session { session_id, .. }) => mine == *session_id,
        (Viewer::Operator { user_id: me }, Subject::Session { before, event, next, in_my_channel, .. }) => {
            let assigned_to_me = |e: Option<&SessionEvent>| matches!(e, Some(S::OperatorAssigned { operator_id, .. }) if *operator_id == me);
            let starting = matches!(event, S::SessionStarted { .. });
            let queue = *in_my_channel
                && match event {
                    S::SessionStarted { .. } => matches!(next, Some(S::SessionQueued {})),
                    S::SessionQueued {} => true,
                    S::OperatorAssigned { .. } | S::SessionTransferred { .. } | S::SessionClosed { .. } => {
                        before.queued
                    }
                    _ => false,
                };
            before.session.operator == Some(me)
                || assigned_to_me(Some(event))
                || (starting && assigned_to_me(*next))
                || queue
        }
        (
            Viewer::Operator { user_id: me },
            Subject::Channel {
                before,
                event: ChannelEvent::OperatorJoined { user_id } | ChannelEvent::OperatorLeft { user_id, .. },
            },
        ) => *user_id == me || before.operators.contains(&me),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use domain::channel::{ChannelOptions, LeaveReason};
    use domain::session::{close, take, transfer, Assignment, Party};

    use super::*;
    use crate::routes::live::story::*;

    /// Operators of each channel in these tests.
    fn operators_of(channel: Uuid) -> Vec<Uuid> {
        match channel {
            SUPPORT => vec![ADA, BOB],
            SALES => vec![CAROL],
            _ => vec![],
        }
    }

    impl Story {
        /// "1" for each event `viewer` sees, "0" for the others, folding as a connection does.
        fn seen_by(&self, viewer: Viewer) -> String {
            let mut before = Conversation::default();
            let mut seen = String::new();
            for (i, event) in self.0.iter().enumerate() {
                let channel = match event {
                    SessionEvent::SessionStarted { channel_id, .. } => Some(*channel_id),
                    _ => before.session.channel_id,
                };
                let me = match viewer {
                    Viewer::Operator { user_id } | Viewer::Admin { user_id } => user_id,
                    Viewer::Visitor { .. } => Uuid::nil(),
                };
                let subject = Subject::Session {
                    session_id: S1,
                    before: &before,
                    event,
                    next: matches!(event, SessionEvent::SessionStarted { .. }).then(|| self.0.get(i + 1)).flatten(),
                    in_my_channel: channel.is_some_and(|c| operators_of(c).contains(&me)),
                };
                seen.push(if visible(viewer, &subject) { '1' } else { '0' });
                before.apply(event);
            }
            seen
        }
    }

    const fn operator(user_id: Uuid) -> Viewer {
        Viewer::Operator { user_id }
    }

    #[test]
    fn who_sees_which_conversation_event() {
        let routed_to_ada = || Story::begin(Some(ADA)).says(Party::Visitor, 1);
        let queued_then_taken_by_bob = || {
            Story::begin(None)
                .says(Party::Visitor, 1)
                .then(|s| take(s, BOB, "Bob", Assignment::Taken).unwrap())
                .says(op(BOB), 2)
        };
        let ada_hands_to_carol = || {
            Story::begin(Some(ADA))
                .then(|s| transfer(s, op(ADA), false, SALES, Some((CAROL, "Carol".into()))).unwrap())
                .says(op(CAROL), 1)
                .then(|s| close(s, op(CAROL), false, Uuid::from_u128(700)).unwrap())
        };
        let ada_sends_to_sales_queue = || {
            Story::begin(Some(ADA))
                .then(|s| transfer(s, op(ADA), false, SALES, None).unwrap())
                .then(|s| take(s, CAROL, "Carol", Assignment::Taken).unwrap())
        };
        let queued_then_visitor_leaves =
            || Story::begin(None).then(|s| close(s, Party::Visitor, false, Uuid::from_u128(700)).unwrap());
        let closed_then_seen = || {
            Story::begin(Some(ADA))
                .says(Party::Visitor, 1)
                .then(|s| close(s, op(ADA), false, Uuid::from_u128(700)).unwrap())
                .then(|s| domain::session::seen(s, Party::Visitor, Uuid::from_u128(601)).unwrap())
        };

        #[rustfmt::skip]
        let table: Vec<(&str, Story, Viewer, &str)> = vec![
            // Started, Assigned(Ada), welcome, visitor message
            ("routed to Ada: all of it for Ada", routed_to_ada(), operator(ADA), "1111"),
            ("routed to Ada: nothing for Bob, though in the channel", routed_to_ada(), operator(BOB), "0000"),
            ("routed to Ada: nothing for Carol", routed_to_ada(), operator(CAROL), "0000"),
            ("routed to Ada: all for an admin", routed_to_ada(), Viewer::Admin { user_id: BOSS }, "1111"),
            ("routed to Ada: all for its visitor", routed_to_ada(), Viewer::Visitor { session_id: S1 }, "1111"),
            ("routed to Ada: nothing for another visitor", routed_to_ada(), Viewer::Visitor { session_id: S2 }, "0000"),
            // Started, Queued, visitor message, Assigned(Bob, taken), Bob's message
            ("queued: Ada sees the queue and the take, not the messages", queued_then_taken_by_bob(), operator(ADA), "11010"),
            ("queued: Bob sees the queue, then his conversation", queued_then_taken_by_bob(), operator(BOB), "11011"),
            ("queued in Support: nothing for Carol", queued_then_taken_by_bob(), operator(CAROL), "00000"),
            // Started, Assigned(Ada), welcome, Transferred, Assigned(Carol), Carol's message, Closed
            ("transferred: Ada sees up to the transfer", ada_hands_to_carol(), operator(ADA), "1111000"),
            ("transferred: Carol sees from her assignment", ada_hands_to_carol(), operator(CAROL), "0000111"),
            ("transferred: nothing for Bob", ada_hands_to_carol(), operator(BOB), "0000000"),
            // Started, Assigned(Ada), welcome, Transferred(Sales), Queued, Assigned(Carol, taken)
            ("to another queue: Ada sees up to the transfer", ada_sends_to_sales_queue(), operator(ADA), "111100"),
            ("to another queue: Carol sees it queued and taken", ada_sends_to_sales_queue(), operator(CAROL), "000011"),
            ("to another queue: nothing for Bob", ada_sends_to_sales_queue(), operator(BOB), "000000"),
            // Started, Queued, system message, Closed
            ("queued then left: Bob sees it leave the queue", queued_then_visitor_leaves(), operator(BOB), "1101"),
            ("queued then left: all for its visitor", queued_then_visitor_leaves(), Viewer::Visitor { session_id: S1 }, "1111"),
            // Started, Assigned(Ada), welcome, visitor message, Closed, Seen by the visitor
            ("closed: Ada still sees what follows", closed_then_seen(), operator(ADA), "111111"),
            ("closed: Bob sees none of it", closed_then_seen(), operator(BOB), "000000"),
        ];
        for (name, story, viewer, expected) in table {
            assert_eq!(story.seen_by(viewer), expected, "{name}");
        }
    }

    #[test]
    fn who_sees_which_channel_event() {
        let support = Channel {
            id: Some(SUPPORT),
            operators: vec![ADA, BOB],
            options: ChannelOptions::default(),
            ..Default::default()
        };
        let without_ada = Channel { operators: vec![BOB], ..support.clone() };
        let joined = ChannelEvent::OperatorJoined { user_id: ADA };
        let left_removed = ChannelEvent::OperatorLeft { user_id: ADA, reason: LeaveReason::Removed };
        let renamed = ChannelEvent::ChannelRenamed { name: "Help".into() };
        let admin = Viewer::Admin { user_id: BOSS };
        let visitor = Viewer::Visitor { session_id: S1 };
        #[rustfmt::skip]
        let table: Vec<(&str, &Channel, &ChannelEvent, Viewer, bool)> = vec![
            ("a join, for the one joining", &support, &joined, operator(ADA), true),
            ("a join, for another operator of the channel", &support, &joined, operator(BOB), true),
            ("a join, for an operator of another channel", &support, &joined, operator(CAROL), false),
            ("a join, for an admin", &support, &joined, admin, true),
            ("a join, for a visitor", &support, &joined, visitor, false),
            ("leaving once removed, for the one removed", &without_ada, &left_removed, operator(ADA), true),
            ("leaving once removed, for the others", &without_ada, &left_removed, operator(BOB), true),
            ("a rename, for an operator", &support, &renamed, operator(ADA), false),
            ("a rename, for an admin", &support, &renamed, admin, true),
        ];
        for (name, before, event, viewer, expected) in table {
            assert_eq!(visible(viewer, &Subject::Channel { before, event }), expected, "{name}");
        }
        for viewer in [admin, visitor, operator(ADA)] {
            assert!(!visible(viewer, &Subject::Other), "users and logins never go out ({viewer:?})");
        }
    }
}
