//! SIGTERM under load: every request the server accepted gets its answer (any status), none
//! is closed unanswered, every write answered 2xx is in the log, and the process exits 0.
//! Plain TCP with hand-written HTTP/1.1, so that the test owns its connections.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::harness::*;

/// What became of one request (the reasons are for the assertion messages).
#[derive(Debug)]
#[allow(dead_code)]
enum Outcome {
    /// A complete response.
    Answered { status: u16, close: bool, body: Value },
    /// The bytes were written, then the connection ended without a complete response.
    Unanswered(String),
    /// Connect refused or the write itself failed: the client knows it was not sent.
    NotSent(String),
}

struct Client {
    stream: TcpStream,
    host: String,
}

impl Client {
    async fn connect(base: &str) -> std::io::Result<Client> {
        let host = base.trim_start_matches("http://").to_string();
        Ok(Client { stream: TcpStream::connect(&host).await?, host })
    }

    /// Writes one request; its answer is read by [`Client::answer`].
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())
    }

    /// Reads one complete response (headers and a `Content-Length` body).
    async fn answer(&mut self) -> Outcome {
        let mut buf = Vec::new();
        let read = async {
            loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                        let close = head.lines().any(|l| l.starts_with("connection:") && l.contains("close"));
                        let body = serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                        return Outcome::Answered { status, close, body };
                    }
                }
                let mut chunk = [0u8; 8192];
                match self.stream.read(&mut chunk).await {
                    Ok(0) => return Outcome::Unanswered(format!("closed after {} bytes of response", buf.len())),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => return Outcome::Unanswered(format!("{e} after {} bytes of response", buf.len())),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(40), read)
            .await
            .unwrap_or_else(|_| Outcome::Unanswered("no answer in 40 s".into()))
    }

    async fn request(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Outcome {
        match self.send(method, path, token, body).await {
            Ok(()) => self.answer().await,
            Err(e) => Outcome::NotSent(e),
        }
    }
}

/// A visitor's conversation, to post messages into.
struct Visit {
    session: String,
    token: String,
}

impl Visit {
    fn post(&self, message_id: Uuid) -> (String, Value) {
        let path = format!("/api/v1/public/sessions/{}/messages", self.session);
        (path, json!({ "message_id": message_id, "text": format!("sent during shutdown {message_id}") }))
    }
}

/// Starts a conversation on `client`'s connection (which stays open, kept alive).
async fn start_visit(client: &mut Client, channel: &str) -> Visit {
    let path = format!("/api/v1/public/channels/{channel}/sessions");
    match client.request("POST", &path, None, Some(&json!({}))).await {
        Outcome::Answered { status: 201, close: false, body } => Visit {
            session: body["session_id"].as_str().unwrap().to_string(),
            token: body["visitor_token"].as_str().unwrap().to_string(),
        },
        other => panic!("session start: {other:?}"),
    }
}

/// A served store, its admin signed in, and the id of its default channel.
/// `linger_ms`: `--shutdown-linger-ms` (the default when `None`).
async fn served(linger_ms: Option<&str>) -> (Server, String, String) {
    let url = sqlite_url(&scratch());
    let flags = linger_ms.map(|ms| vec!["--shutdown-linger-ms", ms]).unwrap_or_default();
    let mut server = Server::start_with(&url, &flags);
    server.login().await;
    for _ in 0..200 {
        let (_, dashboard) = server.get("/api/v1/channels").await;
        if let Some(id) = dashboard["channels"][0]["channel_id"].as_str() {
            return (server, url, id.to_string());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the default channel is never listed");
}

fn sigterm(server: &Server) -> Instant {
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    Instant::now()
}

/// Waits for the exit (without signalling again): its code and the log.
fn exit(mut server: Server) -> (Option<i32>, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            return (status.code(), server.log.lock().unwrap().clone());
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The message ids of the store's log, read by `livechat export` once the server is gone.
fn logged_messages(url: &str) -> HashSet<String> {
    let mut export = livechat(url);
    export.arg("export");
    let out = run(export, "");
    assert!(out.status.success(), "{}", stderr(&out));
    lines(&stdout(&out))
        .into_iter()
        .filter(|e| e["event_type"] == "MessagePosted")
        .filter_map(|e| e["data"]["message_id"].as_str().map(str::to_string))
        .collect()
}

/// Idle keep-alive connections and just-opened ones (accepted or still in the backlog) each
/// send a post right after SIGTERM: every one is answered, with `Connection: close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_on_accepted_connections_right_after_sigterm_are_all_answered() {
    const IDLE: usize = 50;
    const FRESH: usize = 30;
    let (server, url, channel) = served(Some("2000")).await;
    // Keep-alive connections, each with one request done.
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let mut client = Client::connect(&server.base).await.unwrap();
        let visit = start_visit(&mut client, &channel).await;
        idle.push((client, visit));
    }
    let mut readiness = Client::connect(&server.base).await.unwrap();
    assert!(matches!(readiness.request("GET", "/healthz", None, None).await, Outcome::Answered { status: 200, .. }));
    // Conversations for the new connections, started on connections of their own.
    let mut fresh = Vec::new();
    for _ in 0..FRESH {
        let mut setup = Client::connect(&server.base).await.unwrap();
        fresh.push(start_visit(&mut setup, &channel).await);
    }
    // A burst of new connections, with nothing sent yet: the server has accepted some, the
    // others are in its backlog.
    let mut burst = Vec::new();
    for visit in fresh {
        burst.push((Client::connect(&server.base).await.unwrap(), visit));
    }

    let signalled = sigterm(&server);
    let (took, taken) = tokio::sync::watch::channel(false);
    let mut sent = Vec::new();
    for (i, (mut client, visit)) in idle.into_iter().chain(burst).enumerate() {
        let message_id = Uuid::now_v7();
        let mut taken = taken.clone();
        sent.push(tokio::spawn(async move {
            // Half at once; half once the server surely took the signal, over 100 ms: all
            // inside the linger.
            let late = i % 2 == 1;
            if late {
                let _ = taken.wait_for(|t| *t).await;
                tokio::time::sleep(Duration::from_millis(2 * i as u64 % 100)).await;
            }
            let (path, body) = visit.post(message_id);
            (message_id, late, client.request("POST", &path, Some(&visit.token), Some(&body)).await)
        }));
    }
    // Once the server took the signal, new connects are refused and, on a connection it
    // accepted before, it says it is not ready.
    while Client::connect(&server.base).await.is_ok() {
        assert!(signalled.elapsed() < Duration::from_secs(2), "connects are still accepted after SIGTERM");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = took.send(true);
    let ready = readiness.request("GET", "/readyz", None, None).await;

    let mut outcomes = Vec::new();
    for task in sent {
        outcomes.push(task.await.unwrap());
    }
    let (code, log) = exit(server);

    let unanswered: Vec<_> = outcomes.iter().filter(|(_, _, o)| !matches!(o, Outcome::Answered { .. })).collect();
    assert!(unanswered.is_empty(), "{} of {} posts had no answer: {unanswered:?}", unanswered.len(), outcomes.len());
    for (_, late, outcome) in &outcomes {
        let Outcome::Answered { status, close, body } = outcome else { unreachable!() };
        assert_eq!(*status, 201, "{body}");
        assert!(*close || !late, "an answer during the drain closes its connection");
    }
    match ready {
        Outcome::Answered { status, body, .. } => {
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["code"], "shutting-down", "{body}");
        }
        other => panic!("readyz during the drain: {other:?}"),
    }
    assert_eq!(code, Some(0), "{log:?}");
    let logged = logged_messages(&url);
    let missing: Vec<_> = outcomes.iter().filter(|(id, _, _)| !logged.contains(&id.to_string())).collect();
    assert!(missing.is_empty(), "answered 201 but not in the log: {missing:?}");
}

/// Many visitors posting on kept-alive connections, SIGTERM in the middle: not one post is
/// closed without an answer, and every post answered 201 is in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_closes_no_request_without_an_answer() {
    const CLIENTS: usize = 40;
    // The default linger: clients think for at most 12 ms between posts.
    let (server, url, channel) = served(None).await;
    let mut visits = Vec::new();
    for _ in 0..CLIENTS {
        let mut setup = Client::connect(&server.base).await.unwrap();
        visits.push(start_visit(&mut setup, &channel).await);
    }
    let base = server.base.clone();
    let mut clients = Vec::new();
    for (i, visit) in visits.into_iter().enumerate() {
        let base = base.clone();
        clients.push(tokio::spawn(async move {
            // (message id, outcome); a connection closed by an answer is opened again, until
            // the server refuses it.
            let mut results = Vec::new();
            let mut client = match Client::connect(&base).await {
                Ok(c) => c,
                Err(_) => return results,
            };
            let mut n = 0u64;
            loop {
                n += 1;
                // A little think time: connections are idle at any moment, as with real clients.
                tokio::time::sleep(Duration::from_millis((n * 7 + i as u64 * 3) % 12)).await;
                let message_id = Uuid::now_v7();
                let (path, body) = visit.post(message_id);
                let outcome = client.request("POST", &path, Some(&visit.token), Some(&body)).await;
                let closed = !matches!(outcome, Outcome::Answered { close: false, .. });
                results.push((message_id, outcome));
                if closed {
                    match Client::connect(&base).await {
                        Ok(c) => client = c,
                        Err(e) => {
                            results.push((Uuid::nil(), Outcome::NotSent(e.to_string())));
                            return results;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signalled = sigterm(&server);
    let mut outcomes = Vec::new();
    for c in clients {
        outcomes.extend(c.await.unwrap());
    }
    let drained = signalled.elapsed();
    let (code, log) = exit(server);

    let answered = |ok: bool| {
        outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Answered { status, .. } if (*status == 201) == ok)).count()
    };
    let unanswered: Vec<_> = outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Unanswered(_))).collect();
    let not_sent = outcomes.iter().filter(|(_, o)| matches!(o, Outcome::NotSent(_))).count();
    println!(
        "{CLIENTS} clients: {} answered 201, {} answered otherwise, {} closed without an answer, {not_sent} not sent (refused); all done {drained:?} after SIGTERM",
        answered(true),
        answered(false),
        unanswered.len()
    );
    assert!(unanswered.is_empty(), "closed without an answer: {unanswered:?}");
    assert!(answered(true) > CLIENTS * 10, "the clients did post");
    assert_eq!(answered(false), 0, "{outcomes:?}");
    assert_eq!(code, Some(0), "{log:?}");
    let logged = logged_messages(&url);
    let missing: Vec<_> = outcomes
        .iter()
        .filter(|(id, o)| matches!(o, Outcome::Answered { status: 201, .. }) && !logged.contains(&id.to_string()))
        .collect();
    assert!(missing.is_empty(), "answered 201 but not in the log: {missing:?}");
}

/// The accept loop still hands handlers the TCP peer: failed logins under different names
/// from one address are throttled per address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_still_see_the_peer_address() {
    let server = Server::start_with(&sqlite_url(&scratch()), &["--login-attempts-per-address", "2"]);
    let mut statuses = Vec::new();
    for i in 0..3 {
        let mut client = Client::connect(&server.base).await.unwrap();
        let body = json!({ "login": format!("nobody{i}@example.com"), "password": "wrong" });
        match client.request("POST", "/api/v1/auth/token", None, Some(&body)).await {
            Outcome::Answered { status, .. } => statuses.push(status),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(statuses, vec![401, 401, 429]);
}
