//! `GET /api/v1/stream`: the real-time stream, a WebSocket of the events a caller may see and
//! of ephemeral signals (typing).
//!
//! * Auth before upgrading: `Authorization: Bearer ...` or `?access_token=...` (browsers cannot
//!   set headers on WebSockets); operator/admin tokens (`lc_...`) and visitor tokens (`vt_...`).
//! * `?from=POS` resumes after a position the client received (nothing lost, nothing twice, in
//!   order); without it the stream starts at the current head. The first frame is
//!   `{"type":"ready","position":...}`.
//! * Events come from one [`Subscription`] per connection (it wakes on local commits and polls
//!   for other nodes' commits). Who sees what is [`visible`], a pure function of the viewer,
//!   the event and the state folded just before it; the connection keeps that state in small
//!   caches, loading a stream up to the event when it first meets it.
//! * Every frame goes through a bounded queue. Events wait for room (a catch-up goes at the
//!   pace of the socket, never piling up in memory); a queue that stays full for
//!   `slow_after` closes the socket with 1008 "slow consumer: reconnect with ?from=<position of
//!   the last event written>". Typing and error frames are dropped when there is no room.
//! * Pings every `ping_interval`; a client silent for two intervals is closed (1001). An
//!   operator's token is checked again when their user stream changes (revocation,
//!   deactivation, role) and every `recheck_token` (expiry); a failed check closes with 1008.
//!   [`crate::signals::Hub::shut_down`] closes every connection with 1001 and where to resume.
//! * One task per connection: the socket loop and the producers are branches of one
//!   `tokio::select!`, so a closed socket ends all of them.
//!
//! Typing signals are per node (see [`crate::signals`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use commands::stream_id;
use domain::aggregate::Aggregate;
use domain::channel::{Channel, ChannelEvent};
use domain::session::{Party, Session, SessionEvent};
use domain::user::{Role, User};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::{Direction, EventFilter, EventStore, Position, ReadAll, RecordedEvent, StoreError};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{timeout, Instant};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::{self, Caller};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::signals::{Hub, Recipient, Signal, StreamSettings};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/stream", get(stream))
}

// ---------------------------------------------------------------------------------------------
// Who sees what (pure)
// ---------------------------------------------------------------------------------------------

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

/// Who a typing frame from `viewer` about `session_id` goes to, given the conversation as it
/// is: `Ok(None)` when there is nobody to tell (no operator yet), `Err` when the viewer is not
/// a party of the conversation.
pub fn typing_route(
    viewer: Viewer,
    session_id: Uuid,
    now: &Session,
) -> Result<Option<(Party, Recipient)>, &'static str> {
    match viewer {
        Viewer::Visitor { session_id: mine } if mine == session_id => {
            Ok(now.operator.map(|id| (Party::Visitor, Recipient::Operator { id })))
        }
        Viewer::Visitor { .. } => Err("a visitor may only signal in their own conversation"),
        Viewer::Operator { user_id } | Viewer::Admin { user_id } => {
            if now.exists() && now.operator == Some(user_id) {
                Ok(Some((Party::Operator { id: user_id }, Recipient::Visitor)))
            } else {
                Err("only the operator of a conversation may signal in it")
            }
        }
    }
}

/// Is this signal for `viewer`'s connections?
pub fn receives(viewer: Viewer, signal: &Signal) -> bool {
    match (viewer, signal.to) {
        (Viewer::Visitor { session_id }, Recipient::Visitor) => session_id == signal.session_id,
        (Viewer::Operator { user_id } | Viewer::Admin { user_id }, Recipient::Operator { id }) => user_id == id,
        _ => false,
    }
}

/// Blanks secrets before an event leaves: users' password hashes and token digests, and the
/// digest of the visitor's token.
pub fn redact(event_type: &str, data: &mut Value) {
    domain::user::redact(event_type, data);
    if event_type == "SessionStarted" {
        if let Some(v) = data.get_mut("visitor_token_sha256") {
            *v = Value::String("[redacted]".into());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// Server to client.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutFrame<'a> {
    Ready {
        position: Position,
    },
    Event {
        position: Position,
        event_type: &'a str,
        stream_id: &'a str,
        stream_version: u64,
        data: &'a Value,
        recorded_at: DateTime<Utc>,
    },
    Typing {
        session_id: Uuid,
        party: Party,
        typing: bool,
    },
    Error {
        detail: &'a str,
    },
}

/// Client to server.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InFrame {
    Typing { session_id: Uuid, typing: bool },
}

/// A serialized frame; event frames carry their position (what `?from=` resumes after).
struct Frame {
    text: String,
    position: Option<Position>,
}

impl Frame {
    fn of(frame: &OutFrame<'_>) -> Frame {
        let position = match frame {
            OutFrame::Event { position, .. } => Some(*position),
            _ => None,
        };
        Frame { text: serde_json::to_string(frame).expect("frames serialize"), position }
    }

    fn event(e: &RecordedEvent) -> Frame {
        let mut data = e.data.clone();
        redact(&e.event_type, &mut data);
        Frame::of(&OutFrame::Event {
            position: e.position,
            event_type: &e.event_type,
            stream_id: &e.stream_id,
            stream_version: e.stream_version,
            data: &data,
            recorded_at: e.recorded_at,
        })
    }

    fn error(detail: &str) -> Frame {
        Frame::of(&OutFrame::Error { detail })
    }
}

// ---------------------------------------------------------------------------------------------
// The route
// ---------------------------------------------------------------------------------------------

/// Query parameters of `GET /api/v1/stream` (documentation; parsing is in the handler).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StreamQuery {
    /// The token, for clients that cannot send `Authorization` (browsers' WebSockets).
    access_token: Option<String>,
    /// Resume after this position (the `position` of the last frame received).
    from: Option<String>,
}

/// Opens the real-time stream (WebSocket).
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream", params(StreamQuery),
    responses((status = 101, description = "switching to the WebSocket: `ready`, `event`, `typing` and `error` frames"),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut q: Params,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let (viewer, digest) = authenticate(&state, &headers, q.text("access_token")).await?;
    let from: Option<Position> = q.parse("from", "a position (TX:POS) received from this stream");
    q.finish()?;
    let upgrade = upgrade.map_err(|r| Problem::new(r.status(), "websocket-required", r.body_text()))?;
    let start = match from {
        Some(p) => p,
        None => state.events.head().await?.unwrap_or(Position::START),
    };
    Ok(upgrade
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .on_upgrade(move |socket| connection(socket, state, viewer, digest, start)))
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

/// The viewer, and for operators and admins the digest of their token (checked again later).
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<String>,
) -> Result<(Viewer, Option<String>), Problem> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string());
    let token = from_header
        .or(query_token)
        .ok_or_else(|| unauthorized("send the token as `Authorization: Bearer <token>` or `?access_token=<token>`"))?;
    if token.starts_with("vt_") {
        let session_id = crate::visitor::verify(state, &token).await?;
        return Ok((Viewer::Visitor { session_id }, None));
    }
    // The same check as every other route, whichever way the token came.
    let value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| unauthorized("this is not a livechat token"))?;
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers.insert(header::AUTHORIZATION, value);
    let caller = Caller::from_request_parts(&mut parts, state).await?;
    let viewer = if caller.is_admin() {
        Viewer::Admin { user_id: caller.user_id }
    } else {
        Viewer::Operator { user_id: caller.user_id }
    };
    Ok((viewer, Some(auth::digest(&token))))
}

/// Whether an operator's token still holds (not expired or revoked, same role).
async fn still_valid(state: &AppState, viewer: Viewer, digest: Option<&str>) -> bool {
    let (Viewer::Operator { user_id } | Viewer::Admin { user_id }, Some(digest)) = (viewer, digest) else {
        return true;
    };
    match state.users.get(state.events.as_ref(), user_id).await {
        Ok(user) => {
            user.accepts(digest, state.clock.now())
                && (user.role == Role::Admin) == matches!(viewer, Viewer::Admin { .. })
        }
        // A store hiccup does not end the connection; the subscription reports lasting ones.
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------------------------
// One connection
// ---------------------------------------------------------------------------------------------

/// Why the server closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    SlowConsumer,
    TokenRevoked,
    StoreFailed,
    Silent,
    ShuttingDown,
}

/// How the socket loop ended.
enum End {
    /// The client closed or the connection broke.
    Gone,
    Close(Closing),
}

/// The bounded queue of frames to write, shared by the producers of a connection.
struct Outbox {
    frames: mpsc::Sender<Frame>,
    hub: Arc<Hub>,
    slow_after: Duration,
}

impl Outbox {
    /// Queues an event frame, waiting for room (a catch-up goes at the pace of the socket);
    /// a queue that stays full for `slow_after` means the client does not keep up.
    async fn push(&self, frame: Frame) -> Result<(), Closing> {
        let frame = match self.frames.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(frame)) => frame,
            // The socket loop is gone: the whole connection is ending.
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closing::SlowConsumer),
        };
        match timeout(self.slow_after, self.frames.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Closing::SlowConsumer),
            Err(_) => {
                self.hub.note_slow_consumer();
                Err(Closing::SlowConsumer)
            }
        }
    }

    /// Queues an ephemeral frame (typing, errors) if there is room; otherwise it is dropped.
    fn offer(&self, frame: Frame) {
        if self.frames.try_send(frame).is_err() {
            tracing::debug!("stream queue full: an ephemeral frame was dropped");
        }
    }
}

/// Client frames waiting for the typing handler.
const INBOUND: usize = 16;

async fn connection(mut socket: WebSocket, state: AppState, viewer: Viewer, digest: Option<String>, start: Position) {
    let hub = state.signals.clone();
    let _open = hub.connection();
    let settings = hub.settings().clone();
    let (frames, mut queued) = mpsc::channel(settings.queue);
    let (closing, mut closings) = mpsc::channel(4);
    let (inbound, client_frames) = mpsc::channel(INBOUND);
    let out = Outbox { frames, hub: hub.clone(), slow_after: settings.slow_after };
    let signals = hub.subscribe();
    out.offer(Frame::of(&OutFrame::Ready { position: start }));
    let mut last_sent = start;

    let end = tokio::select! {
        end = socket_loop(&mut socket, &mut queued, &mut closings, &inbound, &settings, &mut last_sent) => end,
        end = until_closing(&closing, events(&state, viewer, digest.as_deref(), start, &settings, &out)) => end,
        end = until_closing(&closing, typing_signals(viewer, signals, &out)) => end,
        end = until_closing(&closing, client_typing(&state, viewer, client_frames, &out)) => end,
        end = until_closing(&closing, recheck_token(&state, viewer, digest.as_deref(), &settings)) => end,
        end = until_closing(&closing, async { hub.shutting_down().await; Closing::ShuttingDown }) => end,
    };

    let (code, reason) = match end {
        End::Gone => (None, String::new()),
        End::Close(Closing::SlowConsumer) => {
            (Some(close_code::POLICY), format!("slow consumer: reconnect with ?from={last_sent}"))
        }
        End::Close(Closing::TokenRevoked) => {
            (Some(close_code::POLICY), "the token expired or was revoked: log in again".to_string())
        }
        End::Close(Closing::StoreFailed) => {
            (Some(close_code::ERROR), format!("the event store is unavailable: reconnect with ?from={last_sent}"))
        }
        End::Close(Closing::Silent) => (Some(close_code::AWAY), "no answer to pings".to_string()),
        End::Close(Closing::ShuttingDown) => {
            (Some(close_code::AWAY), format!("the server is shutting down: reconnect with ?from={last_sent}"))
        }
    };
    if let Some(code) = code {
        tracing::info!(?viewer, code, %reason, "closing a stream connection");
        let frame = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
        let _ = timeout(settings.send_timeout, socket.send(frame)).await;
    }
    // Finish the closing handshake (this also flushes tungstenite's answer to a client's
    // close), but never wait long for it.
    let _ = timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = socket.recv().await {} }).await;
}

/// Runs a producer; when it gives up, asks the socket loop to close and waits to be dropped.
async fn until_closing(closing: &mpsc::Sender<Closing>, work: impl Future<Output = Closing>) -> End {
    let why = work.await;
    let _ = closing.send(why).await;
    std::future::pending().await
}

/// Writes queued frames, reads client frames, pings. The only owner of the socket; it alone
/// ends the connection, so a write is never interrupted halfway.
async fn socket_loop(
    socket: &mut WebSocket,
    queued: &mut mpsc::Receiver<Frame>,
    closings: &mut mpsc::Receiver<Closing>,
    inbound: &mpsc::Sender<String>,
    settings: &StreamSettings,
    last_sent: &mut Position,
) -> End {
    let mut ping = tokio::time::interval_at(Instant::now() + settings.ping_interval, settings.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        let (message, position) = tokio::select! {
            biased;
            Some(why) = closings.recv() => return End::Close(why),
            _ = ping.tick() => {
                if heard.elapsed() > settings.ping_interval * 2 {
                    return End::Close(Closing::Silent);
                }
                (Message::Ping(Default::default()), None)
            }
            received = socket.recv() => {
                heard = Instant::now();
                match received {
                    Some(Ok(Message::Text(text))) => {
                        if inbound.try_send(text.as_str().to_string()).is_err() {
                            (Message::Text(Frame::error("too many frames at once; this one was dropped").text.into()), None)
                        } else {
                            continue;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => (Message::Text(Frame::error("frames are JSON text").text.into()), None),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::Gone,
                }
            }
            Some(frame) = queued.recv() => (Message::Text(frame.text.into()), frame.position),
        };
        match timeout(settings.send_timeout, socket.send(message)).await {
            Ok(Ok(())) => {}
            _ => return End::Gone,
        }
        if let Some(p) = position {
            *last_sent = p;
        }
    }
}

/// The events the viewer may see, from `start`, in order.
async fn events(
    state: &AppState,
    viewer: Viewer,
    digest: Option<&str>,
    start: Position,
    settings: &StreamSettings,
    out: &Outbox,
) -> Closing {
    // A visitor's subscription reads only their conversation's stream.
    let filter = match viewer {
        Viewer::Visitor { session_id } => {
            EventFilter { stream: Some(stream_id::<Session>(session_id)), ..Default::default() }
        }
        _ => EventFilter::default(),
    };
    let mut tracker = Tracker::new(viewer);
    // Subscribe to the node's feed first, then catch up by reading: see `crate::feed`.
    let mut feed = match state.feed.subscribe(state.events.clone(), settings.poll).await {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow the log");
            return Closing::StoreFailed;
        }
    };
    let mut cursor = start;
    loop {
        // Catch up from `cursor` by reading until nothing is left.
        loop {
            let query = ReadAll { filter: filter.clone(), ..ReadAll::forward(cursor, 500) };
            let page = match state.events.read_all(&query).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "stream catch-up failed");
                    return Closing::StoreFailed;
                }
            };
            let Some(last) = page.last() else { break };
            let last = last.position;
            if let Err(why) = deliver(state, viewer, digest, &mut tracker, &page, out).await {
                return why;
            }
            cursor = last;
        }
        // Then follow the feed, skipping what was already delivered.
        loop {
            match feed.recv().await {
                Ok(batch) => {
                    let fresh: Vec<RecordedEvent> =
                        batch.iter().filter(|e| e.position > cursor && filter.matches(e)).cloned().collect();
                    if let Err(why) = deliver(state, viewer, digest, &mut tracker, &fresh, out).await {
                        return why;
                    }
                    if let Some(last) = batch.last() {
                        cursor = cursor.max(last.position);
                    }
                }
                // Fell behind the feed's backlog: read again from where we are.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Closing::StoreFailed,
            }
        }
    }
}

/// Sends the events of `batch` the viewer may see, in order.
async fn deliver(
    state: &AppState,
    viewer: Viewer,
    digest: Option<&str>,
    tracker: &mut Tracker,
    batch: &[RecordedEvent],
    out: &Outbox,
) -> Result<(), Closing> {
    for (i, e) in batch.iter().enumerate() {
        match tracker.decide(state.events.as_ref(), e, &batch[i + 1..]).await {
            Ok(Decision::Show) => out.push(Frame::event(e)).await?,
            Ok(Decision::Hide) => {}
            Ok(Decision::CheckToken) => {
                if !still_valid(state, viewer, digest).await {
                    return Err(Closing::TokenRevoked);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load state for the stream");
                return Err(Closing::StoreFailed);
            }
        }
    }
    Ok(())
}

/// Typing signals addressed to this connection.
async fn typing_signals(viewer: Viewer, mut signals: broadcast::Receiver<Signal>, out: &Outbox) -> Closing {
    loop {
        match signals.recv().await {
            Ok(s) if receives(viewer, &s) => {
                out.offer(Frame::of(&OutFrame::Typing { session_id: s.session_id, party: s.party, typing: s.typing }))
            }
            Ok(_) => {}
            // Typing is ephemeral: signals missed while behind are simply gone.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Frames from the client: typing, checked against the conversation as it is now.
async fn client_typing(state: &AppState, viewer: Viewer, mut frames: mpsc::Receiver<String>, out: &Outbox) -> Closing {
    while let Some(text) = frames.recv().await {
        let problem = match serde_json::from_str::<InFrame>(&text) {
            Err(e) => Some(format!(
                "unreadable frame ({e}); expected {{\"type\":\"typing\",\"session_id\":...,\"typing\":true}}"
            )),
            Ok(InFrame::Typing { session_id, typing }) => {
                let now = match viewer {
                    // Another conversation: refused without reading it.
                    Viewer::Visitor { session_id: mine } if mine != session_id => Ok(Session::default()),
                    _ => state
                        .sessions
                        .current(state.events.as_ref(), &stream_id::<Session>(session_id))
                        .await
                        .map(|l| l.state),
                };
                match now {
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot load a conversation for a typing signal");
                        Some("the store is unavailable; try again".to_string())
                    }
                    Ok(now) => match typing_route(viewer, session_id, &now) {
                        Ok(Some((party, to))) => {
                            let signal = Signal { session_id, party, typing, to };
                            crate::signals::send(&state.signals, state.events.as_ref(), signal).await;
                            None
                        }
                        Ok(None) => None,
                        Err(detail) => Some(detail.to_string()),
                    },
                }
            }
        };
        if let Some(detail) = problem {
            out.offer(Frame::error(&detail));
        }
    }
    std::future::pending().await
}

/// Checks an operator's token now and then (expiry); revocations are seen at once in
/// [`events`]. Each check also counts as the operator's activity: the socket loop closes
/// clients that stop answering pings, so an open stream is a live operator (the WebSocket
/// heartbeat of the inactivity rule).
async fn recheck_token(state: &AppState, viewer: Viewer, digest: Option<&str>, settings: &StreamSettings) -> Closing {
    if digest.is_none() {
        return std::future::pending().await;
    }
    let mut every = tokio::time::interval_at(Instant::now() + settings.recheck_token, settings.recheck_token);
    loop {
        every.tick().await;
        if !still_valid(state, viewer, digest).await {
            return Closing::TokenRevoked;
        }
        if let Viewer::Operator { user_id } | Viewer::Admin { user_id } = viewer {
            state.activity.touch(state.views.as_ref(), user_id, state.clock.now()).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State folded as events arrive
// ---------------------------------------------------------------------------------------------

enum Decision {
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
struct Tracker {
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
    fn new(viewer: Viewer) -> Self {
        Tracker { viewer, sessions: Bounded::new(MAX_SESSIONS), channels: Bounded::new(MAX_CHANNELS) }
    }

    /// Decides on `e`; `rest` is what follows it in the same batch.
    async fn decide(
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

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use domain::channel::{ChannelOptions, LeaveReason};
    use domain::session::{close, post, start, take, transfer, Assignment, Start};

    const ADA: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);
    const CAROL: Uuid = Uuid::from_u128(3);
    const BOSS: Uuid = Uuid::from_u128(4);
    const SUPPORT: Uuid = Uuid::from_u128(10);
    const SALES: Uuid = Uuid::from_u128(11);
    const S1: Uuid = Uuid::from_u128(100);
    const S2: Uuid = Uuid::from_u128(101);

    fn op(id: Uuid) -> Party {
        Party::Operator { id }
    }

    /// Operators of each channel in these tests.
    fn operators_of(channel: Uuid) -> Vec<Uuid> {
        match channel {
            SUPPORT => vec![ADA, BOB],
            SALES => vec![CAROL],
            _ => vec![],
        }
    }

    /// A conversation told as decisions on its folded state.
    struct Story(Vec<SessionEvent>);

    impl Story {
        fn begin(operator: Option<Uuid>) -> Story {
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

        fn then(mut self, decide: impl Fn(&Session) -> Vec<SessionEvent>) -> Story {
            let more = decide(&Session::from_history(&self.0));
            assert!(!more.is_empty(), "the story needs events");
            self.0.extend(more);
            self
        }

        fn says(self, party: Party, n: u128) -> Story {
            self.then(|s| post(s, party, Uuid::from_u128(600 + n), "text").unwrap())
        }

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

    #[test]
    fn typing_goes_from_one_party_to_the_other() {
        let with_ada = Session::from_history(&Story::begin(Some(ADA)).0);
        let waiting = Session::from_history(&Story::begin(None).0);
        let nothing = Session::default();
        let visitor = Viewer::Visitor { session_id: S1 };
        type Route = Result<Option<(Party, Recipient)>, ()>;
        #[rustfmt::skip]
        let table: Vec<(&str, Viewer, Uuid, &Session, Route)> = vec![
            ("the visitor, to the operator", visitor, S1, &with_ada, Ok(Some((Party::Visitor, Recipient::Operator { id: ADA })))),
            ("the visitor while waiting: nobody to tell", visitor, S1, &waiting, Ok(None)),
            ("a visitor in another conversation", Viewer::Visitor { session_id: S2 }, S1, &with_ada, Err(())),
            ("the operator, to the visitor", operator(ADA), S1, &with_ada, Ok(Some((op(ADA), Recipient::Visitor)))),
            ("another operator", operator(BOB), S1, &with_ada, Err(())),
            ("an admin who is not its operator", Viewer::Admin { user_id: BOSS }, S1, &with_ada, Err(())),
            ("an operator, in a conversation that does not exist", operator(ADA), S1, &nothing, Err(())),
        ];
        for (name, viewer, session, now, expected) in table {
            assert_eq!(typing_route(viewer, session, now).map_err(|_| ()), expected, "{name}");
        }

        let to_ada =
            Signal { session_id: S1, party: Party::Visitor, typing: true, to: Recipient::Operator { id: ADA } };
        let to_visitor = Signal { session_id: S1, party: op(ADA), typing: true, to: Recipient::Visitor };
        assert!(receives(operator(ADA), &to_ada));
        assert!(receives(Viewer::Admin { user_id: ADA }, &to_ada), "an admin handling conversations gets theirs");
        assert!(!receives(operator(BOB), &to_ada));
        assert!(!receives(visitor, &to_ada), "never back to the sender's side");
        assert!(receives(visitor, &to_visitor));
        assert!(!receives(Viewer::Visitor { session_id: S2 }, &to_visitor));
        assert!(!receives(operator(ADA), &to_visitor));
    }

    #[test]
    fn secrets_never_go_out() {
        let mut started = serde_json::json!({"session_id": S1, "visitor_token_sha256": "abc"});
        redact("SessionStarted", &mut started);
        assert_eq!(started["visitor_token_sha256"], "[redacted]");
        let mut token = serde_json::json!({"token_sha256": "abc", "expires_at": "2030-01-01T00:00:00Z"});
        redact("TokenIssued", &mut token);
        assert_eq!(token["token_sha256"], "[redacted]");
        let mut message = serde_json::json!({"text": "visitor_token_sha256"});
        redact("MessagePosted", &mut message);
        assert_eq!(message["text"], "visitor_token_sha256");
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let f = Frame::of(&OutFrame::Typing { session_id: S1, party: Party::Visitor, typing: true });
        let v: Value = serde_json::from_str(&f.text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "typing", "session_id": S1, "party": {"kind": "visitor"}, "typing": true})
        );
        let r: Value =
            serde_json::from_str(&Frame::of(&OutFrame::Ready { position: Position::new(3, 9) }).text).unwrap();
        assert_eq!(r, serde_json::json!({"type": "ready", "position": "3:9"}));
        let typing: InFrame =
            serde_json::from_value(serde_json::json!({"type": "typing", "session_id": S1, "typing": false})).unwrap();
        assert!(matches!(typing, InFrame::Typing { session_id: S1, typing: false }));
    }
}
