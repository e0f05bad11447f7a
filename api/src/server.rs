//! The HTTP/1.1 accept loop and its shutdown, on hyper: every connection accepted, by the
//! loop or still in the listener's backlog, gets an answer to the requests it sends before
//! its linger ends.
//!
//! On the signal: stop calling `accept`, accept what the kernel already completed (the
//! backlog: those clients saw their connect succeed), close the listener (new connects are
//! refused, which a client reads as "not sent"), then answer every request with
//! `Connection: close`. Idle connections are left open for the linger, so that a request
//! already on its way is still read and answered; after it, idle connections are closed and
//! in-flight requests run to their end (the caller bounds that wait).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long idle connections stay open once shutdown began, by default.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(500);

/// Serves `app` on `listener` until `shutdown` completes, then drains as the module says.
/// `draining` turns true once the listener is closed (from then on responses close their
/// connection, and `/readyz` says `shutting-down`); `on_drain` runs at that moment too.
pub async fn run(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    draining: Arc<AtomicBool>,
    linger: Duration,
    on_drain: impl FnOnce(),
) -> io::Result<()> {
    // Each connection task holds a receiver: `closed()` completes when the last one ended;
    // `true` tells idle connections to close.
    let (close, closing) = watch::channel(false);
    let serve = |stream: TcpStream, peer: SocketAddr| {
        tokio::spawn(connection(stream, peer, app.clone(), draining.clone(), closing.clone()));
    };
    let mut shutdown = pin!(shutdown);
    loop {
        let failed = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    serve(stream, peer);
                    continue;
                }
                Err(e) => e,
            },
        };
        // The peer gave up (ignored), or the process is out of file descriptors: wait for
        // some to close, as hyper did, but not past the signal.
        if !is_connection_error(&failed) {
            tracing::error!(e = %failed, "accept failed");
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
    // The backlog: connections the kernel completed but nobody accepted yet. Without `accept`
    // they would be reset when the listener closes, after the client's connect succeeded.
    let late = match listener.into_std() {
        // Dropped at the end of the arm: the listener is closed, new connects are refused.
        Ok(backlog) => accept_backlog(&backlog, serve),
        Err(e) => {
            tracing::warn!(%e, "could not accept the backlog");
            0
        }
    };
    // Only now: a response that closes its connection before the listener is closed would
    // let its client reconnect into a listener about to drop that connection.
    draining.store(true, Ordering::SeqCst);
    on_drain();
    tracing::info!(
        backlog = late,
        connections = close.receiver_count() - 1,
        linger_ms = linger.as_millis() as u64,
        "stopped accepting; answering what was accepted"
    );
    drop(closing);
    // Connections end by themselves once they answered with `Connection: close`: the linger
    // is only as long as one stays idle.
    tokio::select! {
        () = tokio::time::sleep(linger) => {}
        () = close.closed() => {}
    }
    let _ = close.send(true);
    close.closed().await;
    Ok(())
}

/// One HTTP/1.1 connection (WebSocket upgrades included), closed early only when idle after
/// the linger.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    draining: Arc<AtomicBool>,
    mut closing: watch::Receiver<bool>,
) {
    let app = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        // Handlers read the TCP peer from here (login throttling, the client address).
        req.extensions_mut().insert(ConnectInfo(peer));
        let answer = hyper::service::Service::call(&app, req);
        let draining = draining.clone();
        async move {
            let mut res = answer.await?;
            // Once draining, no connection is kept for a next request: the client sends it
            // on a new connection, which is refused (plainly "not sent").
            if draining.load(Ordering::SeqCst) && res.status() != StatusCode::SWITCHING_PROTOCOLS {
                res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(res)
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
    let mut conn = pin!(conn);
    tokio::select! {
        done = conn.as_mut() => return finished(done),
        _ = closing.wait_for(|c| *c) => {}
    }
    // Closes the connection if idle; otherwise the request runs and its answer closes it.
    conn.as_mut().graceful_shutdown();
    finished(conn.await);
}

fn finished(done: Result<(), hyper::Error>) {
    if let Err(e) = done {
        tracing::trace!(%e, "connection ended with an error");
    }
}

/// Accepts until the backlog is empty, handing each connection to `serve`; returns how many.
fn accept_backlog(backlog: &std::net::TcpListener, serve: impl Fn(TcpStream, SocketAddr)) -> usize {
    let mut late = 0;
    loop {
        match backlog.accept() {
            Ok((stream, peer)) => match stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream)) {
                Ok(stream) => {
                    late += 1;
                    serve(stream, peer);
                }
                Err(e) => tracing::warn!(%e, "could not serve a connection of the backlog"),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return late,
            Err(e) if is_connection_error(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(%e, "stopped accepting the backlog");
                return late;
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}
