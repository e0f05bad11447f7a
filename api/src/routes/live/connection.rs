//! One connection: a single task whose branches (the socket loop, the events, typing both
//! ways, token re-checks, shutdown) end together.

use std::future::Future;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use commands::stream_id;
use domain::session::Session;
use store::{EventFilter, Position, ReadAll, RecordedEvent};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::frames::{Frame, OutFrame};
use super::outbox::{Closing, Outbox};
use super::token::still_valid;
use super::tracker::{Decision, Tracker};
use super::typing::{client_typing, typing_signals};
use super::visibility::Viewer;
use crate::signals::StreamSettings;
use crate::AppState;

/// How the socket loop ended.
enum End {
    /// The client closed or the connection broke.
    Gone,
    Close(Closing),
}

/// Client frames waiting for the typing handler.
const INBOUND: usize = 16;

pub(super) async fn connection(
    mut socket: WebSocket,
    state: AppState,
    viewer: Viewer,
    digest: Option<String>,
    start: Position,
) {
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
