//! Transcripts by email over real HTTP, delivered by the outbox worker to a real SMTP
//! listener on 127.0.0.1 (written here), or as `.eml` files without one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::common::{Answer, Env};
use api::AppState;
use commands::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

/// A message the SMTP listener accepted.
#[derive(Clone, Debug)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server: EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT. It answers
/// the end of DATA with the queued `refusals` first (e.g. a 451), then accepts.
#[derive(Clone)]
struct Smtp {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Mail>>>,
    refusals: Arc<Mutex<Vec<&'static str>>>,
}

impl Smtp {
    async fn start() -> Smtp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = Smtp { addr: listener.local_addr().unwrap(), received: Arc::default(), refusals: Arc::default() };
        let server = smtp.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(server.clone().session(conn));
            }
        });
        smtp
    }

    fn refuse_next(&self, answer: &'static str) {
        self.refusals.lock().unwrap().push(answer);
    }

    fn received(&self) -> Vec<Mail> {
        self.received.lock().unwrap().clone()
    }

    async fn session(self, conn: tokio::net::TcpStream) {
        let (r, mut w) = conn.into_split();
        let mut r = BufReader::new(r);
        let mut mail = Mail { from: String::new(), to: vec![], data: String::new() };
        w.write_all(b"220 test.local ESMTP\r\n").await.unwrap();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let arg = line.split_once(':').map(|(_, a)| a.trim().to_string()).unwrap_or_default();
            let answer = match verb.as_str() {
                "EHLO" | "HELO" => "250 test.local".to_string(),
                "MAIL" => {
                    mail = Mail { from: arg, to: vec![], data: String::new() };
                    "250 2.1.0 ok".into()
                }
                "RCPT" => {
                    mail.to.push(arg);
                    "250 2.1.5 ok".into()
                }
                "DATA" => {
                    w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.unwrap();
                    let mut data = String::new();
                    loop {
                        let mut l = String::new();
                        if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if l == ".\r\n" {
                            break;
                        }
                        // Undo dot-stuffing (RFC 5321 4.5.2).
                        data.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(l.as_str()));
                    }
                    let refusal = {
                        let mut q = self.refusals.lock().unwrap();
                        (!q.is_empty()).then(|| q.remove(0))
                    };
                    match refusal {
                        Some(answer) => answer.to_string(),
                        None => {
                            // The CRLF before the final dot belongs to the terminator.
                            mail.data = data.strip_suffix("\r\n").unwrap_or(&data).to_string();
                            let mut received = self.received.lock().unwrap();
                            received.push(mail.clone());
                            format!("250 2.0.0 queued as {}", received.len())
                        }
                    }
                }
                "RSET" | "NOOP" => "250 2.0.0 ok".into(),
                "QUIT" => {
                    let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
                    return;
                }
                _ => "502 5.5.2 not implemented".into(),
            };
            if w.write_all(format!("{answer}\r\n").as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// The server's state with the worker pointed at `smtp`, or at `.eml` files in `dir`.
fn mailer_state(env: &Env, smtp: Option<&Smtp>, dir: Option<std::path::PathBuf>) -> AppState {
    let mut state = env.state.clone();
    state.config.mailer.smtp = smtp.map(|s| ("127.0.0.1".to_string(), s.addr.port()));
    state.config.mailer.from = "livechat@test.local".into();
    if let Some(d) = dir {
        state.config.mailer.dir = d;
    }
    state
}

struct Chat {
    session: String,
    visitor: String,
    ada_token: String,
}

/// Ada answers Marie; Marie writes twice (with a line break and HTML-looking text).
async fn chat(env: &Env) -> Chat {
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    let a = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let started = env
        .call(
            Method::POST,
            &format!("/api/v1/public/channels/{channel}/sessions"),
            None,
            Some(json!({"name": "Marie"})),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.body);
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();
    for (token, path, text) in [
        (&visitor, format!("/api/v1/public/sessions/{session}/messages"), "Is my order <b>shipped</b>?"),
        (&ada_token, format!("/api/v1/conversations/{session}/messages"), "Yes: it left today.\nTracking: 42."),
        (&visitor, format!("/api/v1/public/sessions/{session}/messages"), "Thanks!"),
    ] {
        let a = env.call(Method::POST, &path, Some(token), Some(json!({"text": text}))).await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    Chat { session, visitor, ada_token }
}

async fn leave(env: &Env, c: &Chat) {
    let path = format!("/api/v1/public/sessions/{}/leave", c.session);
    assert_eq!(env.call(Method::POST, &path, Some(&c.visitor), None).await.status, 204);
}

async fn visitor_asks(env: &Env, c: &Chat, body: Value) -> Answer {
    let path = format!("/api/v1/public/sessions/{}/transcript", c.session);
    env.call(Method::POST, &path, Some(&c.visitor), Some(body)).await
}

async fn operator_asks(env: &Env, session: &str, token: &str, body: Value) -> Answer {
    env.call(Method::POST, &format!("/api/v1/conversations/{session}/transcript"), Some(token), Some(body)).await
}

/// The transcript we expect, built from the history the visitor reads through the API.
async fn expected_text(env: &Env, c: &Chat) -> String {
    let path = format!("/api/v1/public/sessions/{}/messages?limit=200", c.session);
    let history = env.call(Method::GET, &path, Some(&c.visitor), None).await;
    assert_eq!(history.status, 200);
    let messages = history.body["messages"].as_array().unwrap().clone();
    let time = |m: &Value| {
        let t: chrono::DateTime<chrono::Utc> = m["posted_at"].as_str().unwrap().parse().unwrap();
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    };
    let mut text = format!("Conversation with Ada (support)\nStarted {}\n", time(&messages[0]));
    for m in &messages {
        let name = match m["author"]["name"].as_str().unwrap() {
            "" => "Livechat",
            n => n,
        };
        text.push_str(&format!("\n[{}] {name}:\n{}\n", time(m), m["text"].as_str().unwrap()));
    }
    text
}

/// The body of an RFC 5322 message, with CRLF line ends made LF.
fn body_of(data: &str) -> String {
    let data = data.replace("\r\n", "\n");
    data.split_once("\n\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

async fn event_types(env: &Env, session: &str) -> Vec<String> {
    let events = env
        .state
        .events
        .read_stream(&format!("transcript-{session}"), 0, store::Direction::Forward, 100)
        .await
        .unwrap();
    events.into_iter().map(|e| e.event_type).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_gets_the_transcript_by_smtp_after_a_retry() {
    let env = Env::start().await;
    let c = chat(&env).await;

    let early = visitor_asks(&env, &c, json!({"email": "marie@example.com"})).await;
    assert_eq!((early.status, early.body["code"].as_str()), (409, Some("conversation-open")), "{}", early.body);
    leave(&env, &c).await;
    // The rating is part of what the visitor saw.
    let path = format!("/api/v1/public/sessions/{}/rating", c.session);
    let rated = env.call(Method::POST, &path, Some(&c.visitor), Some(json!({"value": 5, "feedback": "Quick!"}))).await;
    assert_eq!(rated.status, 201, "{}", rated.body);

    let asked = visitor_asks(&env, &c, json!({"email": " Marie.Curie@Example.COM "})).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(asked.body["status"], "pending");
    assert_eq!(asked.body["email"], "Marie.Curie@example.com", "the domain is lower-cased, the local part kept");
    let id = asked.body["transcript_id"].as_str().unwrap().to_string();
    let location = format!("/api/v1/public/sessions/{}/transcripts/{id}", c.session);
    assert_eq!(asked.headers["location"].to_str().unwrap(), location);
    assert_eq!(asked.headers["access-control-allow-origin"], "*");

    // The operator follows it too (once the view has the request).
    let by_ada = format!("/api/v1/transcripts/{id}?min_position={}", asked.position());
    let status = env.call(Method::GET, &by_ada, Some(&c.ada_token), None).await;
    assert_eq!((status.status, &status.body["status"]), (200, &json!("pending")), "{}", status.body);

    let smtp = Smtp::start().await;
    smtp.refuse_next("451 4.3.0 try again later");
    let worker = mailer_state(&env, Some(&smtp), None);
    assert_eq!(api::mailer::deliver_due(&worker).await.unwrap(), 1);
    assert!(smtp.received().is_empty());
    let failed = env.call(Method::GET, &location, Some(&c.visitor), None).await;
    assert_eq!(failed.status, 200, "{}", failed.body);
    assert_eq!((failed.body["status"].as_str(), failed.body["attempts"].as_u64()), (Some("pending"), Some(1)));
    assert!(failed.body["last_error"].as_str().unwrap().contains("try again later"), "{}", failed.body);
    let next: chrono::DateTime<chrono::Utc> = failed.body["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next - env.clock.now(), chrono::Duration::seconds(30), "the first backoff");

    // Not before the backoff; then it goes through.
    assert_eq!(api::mailer::deliver_due(&worker).await.unwrap(), 0);
    env.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(api::mailer::deliver_due(&worker).await.unwrap(), 1);
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "<livechat@test.local>");
    assert_eq!(mail.to, vec!["<Marie.Curie@example.com>".to_string()]);
    assert_eq!(header(&mail.data, "Subject"), Some("Conversation with Ada (support)"));
    assert_eq!(header(&mail.data, "To"), Some("Marie.Curie@example.com"));
    assert_eq!(body_of(&mail.data), expected_text(&env, &c).await);
    for seen in ["Ada (support):\nYes: it left today.\nTracking: 42.", "Marie:\nThanks!", "Rating: Happy\nQuick!"] {
        assert!(body_of(&mail.data).contains(seen), "{seen} in {}", mail.data);
    }

    let delivered = env.call(Method::GET, &location, Some(&c.visitor), None).await;
    insta::assert_json_snapshot!("smtp_delivered", delivered.body, {
        ".transcript_id" => "[id]", ".session_id" => "[id]", ".requested_at" => "[time]"
    });
    assert_eq!(
        event_types(&env, &c.session).await,
        ["TranscriptRequested", "TranscriptAttemptFailed", "TranscriptDelivered"]
    );
    // Nothing left to do.
    env.clock.advance(chrono::Duration::hours(2));
    assert_eq!(api::mailer::deliver_due(&worker).await.unwrap(), 0);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_transcript_is_an_eml_file_and_a_refused_address_gives_up() {
    let env = Env::start().await;
    let c = chat(&env).await;
    // Operators may send it while the conversation is open.
    let asked = operator_asks(&env, &c.session, &c.ada_token, json!({"email": "marie@example.com"})).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let id = asked.body["transcript_id"].as_str().unwrap().to_string();
    assert_eq!(asked.headers["location"].to_str().unwrap(), format!("/api/v1/transcripts/{id}"));
    let status = format!("/api/v1/transcripts/{id}?min_position={}", asked.position());
    assert_eq!(env.call(Method::GET, &status, Some(&c.ada_token), None).await.status, 200);

    let dir = std::env::temp_dir().join(format!("livechat-transcripts-{}", Uuid::now_v7()));
    let worker = mailer_state(&env, None, Some(dir.clone()));
    assert_eq!(api::mailer::deliver_due(&worker).await.unwrap(), 1);
    let file = dir.join(format!("{id}.eml"));
    let data = std::fs::read_to_string(&file).unwrap();
    assert_eq!(header(&data, "To"), Some("marie@example.com"));
    assert_eq!(header(&data, "From"), Some("livechat@test.local"));
    assert_eq!(header(&data, "Subject"), Some("Conversation with Ada (support)"));
    assert_eq!(body_of(&data), expected_text(&env, &c).await);
    let done = env.call(Method::GET, &format!("/api/v1/transcripts/{id}"), Some(&c.ada_token), None).await;
    assert_eq!(
        (&done.body["status"], &done.body["delivered_via"], &done.body["detail"], &done.body["next_attempt_at"]),
        (&json!("delivered"), &json!("file"), &json!(format!("{id}.eml")), &Value::Null),
        "{}",
        done.body
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A permanent refusal (550) is not retried.
    let smtp = Smtp::start().await;
    smtp.refuse_next("550 5.1.1 no such user");
    let asked = operator_asks(&env, &c.session, &c.ada_token, json!({"email": "nobody@example.com"})).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let id = asked.body["transcript_id"].as_str().unwrap().to_string();
    let status = format!("/api/v1/transcripts/{id}?min_position={}", asked.position());
    assert_eq!(env.call(Method::GET, &status, Some(&c.ada_token), None).await.status, 200);
    let worker = mailer_state(&env, Some(&smtp), None);
    assert_eq!(api::mailer::deliver_due(&worker).await.unwrap(), 1);
    let failed = env.call(Method::GET, &format!("/api/v1/transcripts/{id}"), Some(&c.ada_token), None).await;
    assert_eq!((failed.body["status"].as_str(), failed.body["attempts"].as_u64()), (Some("failed"), Some(1)));
    assert!(failed.body["last_error"].as_str().unwrap().contains("no such user"), "{}", failed.body);
    env.clock.advance(chrono::Duration::hours(2));
    assert_eq!(api::mailer::deliver_due(&worker).await.unwrap(), 0);
    assert!(smtp.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_write_nothing() {
    let env = Env::start().await;
    let c = chat(&env).await;
    leave(&env, &c).await;
    let stream_version =
        || async { env.state.events.stream_version(&format!("transcript-{}", c.session)).await.unwrap() };

    // Invalid addresses: 422 with a field error.
    for bad in [json!({"email": "marie@localhost"}), json!({"email": "a b@example.com"}), json!({})] {
        let a = visitor_asks(&env, &c, bad.clone()).await;
        assert_eq!(a.status, 422, "{bad}: {}", a.body);
        assert_eq!(a.body["errors"][0]["field"], "email", "{}", a.body);
    }
    insta::assert_json_snapshot!(
        "invalid_address",
        visitor_asks(&env, &c, json!({"email": "marie@@example.com"})).await.body
    );
    let a = operator_asks(&env, &c.session, &c.ada_token, json!({"email": "x@-example.com"})).await;
    assert_eq!((a.status, &a.body["errors"][0]["field"]), (422, &json!("email")), "{}", a.body);
    let a = visitor_asks(&env, &c, json!({"email": "m@example.com", "bcc": "x@example.com"})).await;
    assert_eq!(a.status, 400, "unknown fields are refused: {}", a.body);

    // Another visitor's conversation.
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let other = chat_for(&env, bob, &bob_token).await;
    let path = format!("/api/v1/public/sessions/{}/transcript", c.session);
    let a = env.call(Method::POST, &path, Some(&other), Some(json!({"email": "m@example.com"}))).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("not-your-conversation")), "{}", a.body);
    let a = env.call(Method::POST, &path, None, Some(json!({"email": "m@example.com"}))).await;
    assert_eq!(a.status, 401);

    // An operator not in the conversation; an admin may.
    let a = operator_asks(&env, &c.session, &bob_token, json!({"email": "m@example.com"})).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("not-your-conversation")), "{}", a.body);
    let a = operator_asks(&env, &Uuid::now_v7().to_string(), &c.ada_token, json!({"email": "m@example.com"})).await;
    assert_eq!(a.status, 404);
    assert_eq!(stream_version().await, None, "no refusal wrote anything");

    let by_admin = operator_asks(&env, &c.session, &env.admin, json!({"email": "boss@example.com"})).await;
    assert_eq!(by_admin.status, 202, "{}", by_admin.body);
    let admin_id = by_admin.body["transcript_id"].as_str().unwrap();
    // Bob cannot follow it; the visitor does not see transcripts sent by others.
    let status = format!("/api/v1/transcripts/{admin_id}?min_position={}", by_admin.position());
    let a = env.call(Method::GET, &status, Some(&bob_token), None).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = env.call(Method::GET, &status, Some(&c.ada_token), None).await;
    assert_eq!(a.status, 200, "the conversation's operator may: {}", a.body);
    let path = format!("/api/v1/public/sessions/{}/transcripts/{admin_id}", c.session);
    assert_eq!(env.call(Method::GET, &path, Some(&c.visitor), None).await.status, 404);
    let a = env.call(Method::GET, &format!("/api/v1/transcripts/{}", Uuid::now_v7()), Some(&c.ada_token), None).await;
    assert_eq!(a.status, 404);

    // At most five per conversation; a retried request (same Idempotency-Key) is not a new one.
    let path = format!("/api/v1/public/sessions/{}/transcript", c.session);
    let retry = [("idempotency-key", "k1")];
    let first =
        env.call_with(Method::POST, &path, Some(&c.visitor), Some(json!({"email": "m@example.com"})), &retry).await;
    let again =
        env.call_with(Method::POST, &path, Some(&c.visitor), Some(json!({"email": "m@example.com"})), &retry).await;
    assert_eq!((first.status, again.status), (202, 202));
    assert_eq!(first.body["transcript_id"], again.body["transcript_id"]);
    for _ in 0..3 {
        assert_eq!(visitor_asks(&env, &c, json!({"email": "m@example.com"})).await.status, 202);
    }
    let sixth = visitor_asks(&env, &c, json!({"email": "m@example.com"})).await;
    assert_eq!((sixth.status, sixth.body["code"].as_str()), (429, Some("too-many-transcripts")), "{}", sixth.body);
    assert_eq!(stream_version().await, Some(4), "five requests");
}

/// Another conversation (with Bob), returning its visitor token.
async fn chat_for(env: &Env, bob: Uuid, bob_token: &str) -> String {
    let channel = env.channel("Sales", &[bob]).await;
    let a = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(bob_token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let started = env
        .call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({"name": "Paul"})))
        .await;
    assert_eq!(started.status, 201, "{}", started.body);
    started.body["visitor_token"].as_str().unwrap().to_string()
}
