//! The state a connection folds, event by event, to decide visibility: small caches of
//! conversations and channels, a stream loaded up to the event when first met.

use std::collections::HashMap;

use commands::stream_id;
use domain::aggregate::Aggregate;
use domain::channel::{Channel, ChannelEvent};
use domain::session::{Session, SessionEvent};
use domain::user::User;
use serde::de::DeserializeOwned;
use store::{Direction, EventStore, Position, RecordedEvent, StoreError};
use uuid::Uuid;

use super::visibility::{visible, Conversation, Subject, Viewer};

pub(super) enum Decision {
    Show,
    Hide,
    /// An event of the viewer's own user stream: their token may have been revoked.
    CheckToken,
}

/// Conversations an operator connection remembers; a forgotten one is loaded again.
const MAX_SESSIONS: usize = 2_000;
const MAX_CHANNELS: usize = 1_000;

/// A map that forgets an arbitrary entry when full.
struct Bounded<V> {
    map: HashMap<Uuid, V>,
    cap: usize,
}

impl<V> Bounded<V> {
    fn new(cap: usize) -> Self {
        Bounded { map: HashMap::new(), cap }
    }

    fn insert(&mut self, id: Uuid, v: V) {
        if self.map.len() >= self.cap && !self.map.contains_key(&id) {
            if let Some(k) = self.map.keys().next().copied() {
                self.map.remove(&k);
            }
        }
        self.map.insert(id, v);
    }
}

/// The state a connection folds, event by event, to decide visibility.
pub(super) struct Tracker {
    viewer: Viewer,
    /// Conversation, and the version of its stream it was folded to.
    sessions: Bounded<(Conversation, u64)>,
    /// Channel, and the version of its stream it was folded to (`None`: no event yet).
    channels: Bounded<(Channel, Option<u64>)>,
}

fn id_in(stream: &str, category: &str) -> Option<Uuid> {
    stream.strip_prefix(category)?.strip_prefix('-').and_then(|id| Uuid::try_parse(id).ok())
}

fn decoded<E: DeserializeOwned>(e: &RecordedEvent) -> Option<E> {
    match domain::aggregate::decode_versioned(&e.event_type, e.schema_version, &e.data) {
        Ok(event) => Some(event),
        Err(err) => {
            tracing::warn!(error = %err, stream = %e.stream_id, version = e.stream_version, "event not understood");
            None
        }
    }
}

/// Folds the events of `stream` up to and including position `through`; the version of the
/// last one folded. Events this code cannot read are skipped.
async fn fold_through<E: DeserializeOwned>(
    events: &dyn EventStore,
    stream: &str,
    through: Position,
    mut apply: impl FnMut(&E),
) -> Result<Option<u64>, StoreError> {
    const PAGE: usize = 500;
    let (mut from, mut version) = (0, None);
    loop {
        let page = events.read_stream(stream, from, Direction::Forward, PAGE).await?;
        for e in &page {
            if e.position > through {
                return Ok(version);
            }
            if let Some(event) = decoded::<E>(e) {
                apply(&event);
            }
            version = Some(e.stream_version);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => from = last.stream_version + 1,
            _ => return Ok(version),
        }
    }
}

impl Tracker {
    pub(super) fn new(viewer: Viewer) -> Self {
        Tracker { viewer, sessions: Bounded::new(MAX_SESSIONS), channels: Bounded::new(MAX_CHANNELS) }
    }

    /// Decides on `e`; `rest` is what follows it in the same batch.
    pub(super) async fn decide(
        &mut self,
        events: &dyn EventStore,
        e: &RecordedEvent,
        rest: &[RecordedEvent],
    ) -> Result<Decision, StoreError> {
        let show = |yes: bool| if yes { Decision::Show } else { Decision::Hide };
        let me = match self.viewer {
            // Visitors and admins need no state: their visibility depends on the event alone.
            Viewer::Visitor { .. } | Viewer::Admin { .. } => {
                let subject_ok = match e.category() {
                    "session" => id_in(&e.stream_id, Session::CATEGORY).zip(decoded::<SessionEvent>(e)).is_some_and(
                        |(session_id, event)| {
                            visible(
                                self.viewer,
                                &Subject::Session {
                                    session_id,
                                    before: &Conversation::default(),
                                    event: &event,
                                    next: None,
                                    in_my_channel: false,
                                },
                            )
                        },
                    ),
                    "channel" => decoded::<ChannelEvent>(e).is_some_and(|event| {
                        visible(self.viewer, &Subject::Channel { before: &Channel::default(), event: &event })
                    }),
                    _ => {
                        if let Viewer::Admin { user_id } = self.viewer {
                            if e.stream_id == stream_id::<User>(user_id) {
                                return Ok(Decision::CheckToken);
                            }
                        }
                        visible(self.viewer, &Subject::Other)
                    }
                };
                return Ok(show(subject_ok));
            }
            Viewer::Operator { user_id } => user_id,
        };
        match e.category() {
            "session" => self.session(events, e, rest, me).await.map(show),
            "channel" => self.channel_event(events, e).await.map(show),
            _ if e.stream_id == stream_id::<User>(me) => Ok(Decision::CheckToken),
            _ => Ok(show(visible(self.viewer, &Subject::Other))),
        }
    }

    async fn session(
        &mut self,
        events: &dyn EventStore,
        e: &RecordedEvent,
        rest: &[RecordedEvent],
        me: Uuid,
    ) -> Result<bool, StoreError> {
        let Some(session_id) = id_in(&e.stream_id, Session::CATEGORY) else { return Ok(false) };
        let Some(event) = decoded::<SessionEvent>(e) else {
            self.sessions.map.remove(&session_id);
            return Ok(false);
        };
        let before = match (self.sessions.map.remove(&session_id), &event) {
            (_, SessionEvent::SessionStarted { .. }) => Conversation::default(),
            (Some((c, v)), _) if v + 1 == e.stream_version => c,
            _ => {
                let mut c = Conversation::default();
                fold_through::<SessionEvent>(events, &e.stream_id, e.position.just_before(), |x| c.apply(x)).await?;
                c
            }
        };
        let next = match event {
            SessionEvent::SessionStarted { .. } => match rest.iter().find(|x| x.stream_id == e.stream_id) {
                Some(x) => decoded::<SessionEvent>(x),
                None => events
                    .read_stream(&e.stream_id, e.stream_version + 1, Direction::Forward, 1)
                    .await?
                    .first()
                    .and_then(decoded::<SessionEvent>),
            },
            _ => None,
        };
        let channel = match &event {
            SessionEvent::SessionStarted { channel_id, .. } => Some(*channel_id),
            _ => before.session.channel_id,
        };
        let queue_event = matches!(
            event,
            SessionEvent::SessionStarted { .. }
                | SessionEvent::SessionQueued {}
                | SessionEvent::OperatorAssigned { .. }
                | SessionEvent::SessionTransferred { .. }
                | SessionEvent::SessionClosed { .. }
        );
        let in_my_channel = match channel {
            Some(c) if queue_event => self.channel(events, c, e.position.just_before()).await?.operators.contains(&me),
            _ => false,
        };
        let yes = visible(
            self.viewer,
            &Subject::Session { session_id, before: &before, event: &event, next: next.as_ref(), in_my_channel },
        );
        let mut after = before;
        after.apply(&event);
        self.sessions.insert(session_id, (after, e.stream_version));
        Ok(yes)
    }

    /// A channel as of `through`, from the cache (kept current by [`Self::channel_event`]) or
    /// loaded.
    async fn channel(&mut self, events: &dyn EventStore, id: Uuid, through: Position) -> Result<&Channel, StoreError> {
        if !self.channels.map.contains_key(&id) {
            let mut c = Channel::default();
            let version =
                fold_through::<ChannelEvent>(events, &stream_id::<Channel>(id), through, |x| c.apply(x)).await?;
            self.channels.insert(id, (c, version));
        }
        Ok(&self.channels.map[&id].0)
    }

    async fn channel_event(&mut self, events: &dyn EventStore, e: &RecordedEvent) -> Result<bool, StoreError> {
        let Some(id) = id_in(&e.stream_id, Channel::CATEGORY) else { return Ok(false) };
        let Some(event) = decoded::<ChannelEvent>(e) else {
            self.channels.map.remove(&id);
            return Ok(false);
        };
        let presence = matches!(event, ChannelEvent::OperatorJoined { .. } | ChannelEvent::OperatorLeft { .. });
        let before = match self.channels.map.remove(&id) {
            Some((c, v)) if v.map_or(0, |v| v + 1) == e.stream_version => c,
            // Not remembered and not needed: it is loaded when a conversation needs it.
            _ if !presence => return Ok(false),
            _ => self.channel(events, id, e.position.just_before()).await?.clone(),
        };
        let yes = visible(self.viewer, &Subject::Channel { before: &before, event: &event });
        let mut after = before;
        after.apply(&event);
        self.channels.insert(id, (after, Some(e.stream_version)));
        Ok(yes)
    }
}
