//! The real-time stream (`GET /api/v1/stream`) with real WebSocket clients against an
//! in-process server on a socket. Conversations are written directly with the domain's
//! decisions through `commands::execute`, as the HTTP routes would.

use std::sync::Arc;
use std::time::Duration;

use api::signals::{Hub, StreamSettings};
use api::{ApiConfig, AppState};
use chrono::Utc;
use commands::{execute, stream_id, Context};
use domain::aggregate::Aggregate;
use domain::channel::{self, Channel, ChannelOptions};
use domain::metadata::Actor;
use domain::session::{self, Party, Session, SessionError, SessionEvent, Start};
use domain::user::{self, ProfileInput, Role, User};
use domain::values::Email;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use store::{Position, ReadAll, Store, StoreUrl};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for a frame that should come.
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    ws: String,
    http: String,
    state: AppState,
    _stop: watch::Sender<bool>,
}

/// Serves `state` on a fresh socket; `projectors` also runs every projector over its stores.
async fn serve(state: AppState, projectors: Option<&Store>) -> Server {
    let (stop, stopped) = watch::channel(false);
    if let Some(store) = projectors {
        let fast = projections::RunnerConfig { poll: Duration::from_millis(10), ..Default::default() };
        for p in projections::all() {
            tokio::spawn(projections::Runner::new(p, store.events(), store.views(), fast.clone()).run(stopped.clone()));
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut on_stop = stopped.clone();
    tokio::spawn(api::serve(listener, state.clone(), async move {
        let _ = on_stop.wait_for(|s| *s).await;
    }));
    Server { ws: format!("ws://{addr}"), http: format!("http://{addr}"), state, _stop: stop }
}

/// A server over a memory store, with these stream settings.
async fn memory_server(settings: StreamSettings) -> Server {
    let store = Store::open(&StoreUrl::Memory).await.unwrap();
    let mut state = AppState::new(store.events(), store.views(), ApiConfig::default());
    state.signals = Arc::new(Hub::new(settings));
    serve(state, Some(&store)).await
}

fn ctx() -> Context {
    Context::new(Actor::system(), Utc::now())
}

/// A user with this role and a token for them (minted as `POST /api/v1/auth/token` does).
async fn user(state: &AppState, role: Role) -> (Uuid, String) {
    let id = Uuid::now_v7();
    let events = state.events.as_ref();
    let login = Email::parse("login", &format!("{}@example.com", id.simple())).unwrap();
    let profile = ProfileInput { name: format!("User {}", id.simple()), ..Default::default() }.parse().unwrap();
    execute::<User, _>(events, &stream_id::<User>(id), &ctx(), None, |u| {
        user::create(u, id, login.clone(), profile.clone(), role, "$argon2id$never-checked".into())
    })
    .await
    .unwrap();
    let (token, digest) = api::auth::mint(id);
    let expires = Utc::now() + chrono::Duration::hours(1);
    execute::<User, _>(events, &stream_id::<User>(id), &ctx(), None, |u| user::issue_token(u, digest.clone(), expires))
        .await
        .unwrap();
    (id, token)
}

async fn operator(state: &AppState) -> (Uuid, String) {
    user(state, Role::Operator).await
}

/// A channel with these operators.
async fn channel(state: &AppState, operators: &[Uuid]) -> Uuid {
    let id = Uuid::now_v7();
    let stream = stream_id::<Channel>(id);
    let events = state.events.as_ref();
    execute::<Channel, _>(events, &stream, &ctx(), None, |c| {
        channel::create(c, id, "Support", None, ChannelOptions::default())
    })
    .await
    .unwrap();
    for op in operators {
        execute::<Channel, _>(events, &stream, &ctx(), None, |c| channel::add_operator(c, *op, true)).await.unwrap();
    }
    id
}

/// Runs a conversation decision; the position of the last event it wrote.
async fn act(
    state: &AppState,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<SessionEvent>, SessionError>,
) -> Position {
    let outcome = execute::<Session, _>(state.events.as_ref(), &stream_id::<Session>(session_id), &ctx(), None, decide)
        .await
        .unwrap();
    outcome.position.expect("the decision wrote events")
}

/// A conversation in `channel`, routed to `operator` (with the welcome message) or queued; its
/// id and the visitor's token.
async fn start(state: &AppState, channel: Uuid, operator: Option<Uuid>) -> (Uuid, String) {
    let session_id = Uuid::now_v7();
    let (token, digest) = api::visitor::mint(session_id);
    let s = Start {
        session_id,
        channel_id: channel,
        visitor_name: None,
        visitor_number: 1,
        page_url: "/shop".into(),
        country: None,
        languages: vec![],
        visitor_token_sha256: digest,
        operator: operator.map(|o| (o, "Operator".into())),
        welcome_message_id: Uuid::now_v7(),
        welcome_text: "Hello, how may I help you?".into(),
    };
    act(state, session_id, |st| session::start(st, s.clone())).await;
    (session_id, token)
}

async fn say(state: &AppState, session_id: Uuid, author: Party, text: &str) -> Position {
    let message_id = Uuid::now_v7();
    act(state, session_id, |s| session::post(s, author, message_id, text)).await
}

/// Opens the stream with this query string and optional `Authorization` token.
async fn try_connect(server: &Server, query: &str, bearer: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("{}/api/v1/stream{query}", server.ws).into_client_request().unwrap();
    if let Some(token) = bearer {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(ws, _)| ws)
}

/// Opens the stream and reads its `ready` frame; the position it announces.
async fn connect(server: &Server, query: &str, bearer: Option<&str>) -> (Ws, String) {
    let mut ws = try_connect(server, query, bearer).await.expect("the stream opens");
    let ready = frame(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    let position = ready["position"].as_str().unwrap().to_string();
    (ws, position)
}

/// The next text frame, as JSON.
async fn frame(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame within the time limit")
            .expect("the stream is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Event frames until (and including) the one `last` picks.
async fn events_until(ws: &mut Ws, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let f = frame(ws).await;
        assert_eq!(f["type"], "event", "only events expected here: {f}");
        let done = last(&f);
        seen.push(f);
        if done {
            return seen;
        }
    }
}

fn text_is(text: &'static str) -> impl Fn(&Value) -> bool {
    move |f| f["data"]["text"] == text
}

/// `(stream, event type)` of each frame, with the stream named by `names`.
fn summary(frames: &[Value], names: &[(Uuid, &'static str)]) -> Vec<(String, String)> {
    frames
        .iter()
        .map(|f| {
            let stream = f["stream_id"].as_str().unwrap();
            let name = names
                .iter()
                .find(|(id, _)| stream.ends_with(&id.to_string()))
                .map_or(stream.to_string(), |(_, n)| n.to_string());
            (name, f["event_type"].as_str().unwrap().to_string())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn position_of(f: &Value) -> Position {
    f["position"].as_str().unwrap().parse().unwrap()
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_receives_its_own_conversation_and_nothing_else() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, _) = operator(state).await;
    let support = channel(state, &[ada]).await;
    let (mine, my_token) = start(state, support, Some(ada)).await;
    let (other, other_token) = start(state, support, Some(ada)).await;

    // From the start of the log (the token in the query string, as browsers send it).
    let (mut me, from) = connect(&server, &format!("?access_token={my_token}&from=0:0"), None).await;
    assert_eq!(from, "0:0");
    // Live only (the token in the header).
    let (mut them, _) = connect(&server, "", Some(&other_token)).await;

    say(state, other, Party::Visitor, "not for you").await;
    say(state, mine, Party::Visitor, "for you").await;
    say(state, other, Party::Visitor, "theirs").await;

    let frames = events_until(&mut me, text_is("for you")).await;
    let names = [(mine, "mine"), (other, "other")];
    assert_eq!(
        summary(&frames, &names),
        pairs(&[
            ("mine", "SessionStarted"),
            ("mine", "OperatorAssigned"),
            ("mine", "MessagePosted"),
            ("mine", "MessagePosted"),
        ]),
        "its own conversation from the start, nothing of the other"
    );
    assert_eq!(frames[0]["data"]["visitor_token_sha256"], "[redacted]", "no secret goes out");
    assert_eq!(frames[0]["stream_version"], 0);
    assert!(frames[0]["recorded_at"].is_string());
    assert!(frames.windows(2).all(|w| position_of(&w[0]) < position_of(&w[1])), "in log order");

    let theirs = events_until(&mut them, text_is("theirs")).await;
    assert_eq!(
        summary(&theirs, &names),
        pairs(&[("other", "MessagePosted"), ("other", "MessagePosted")]),
        "live from the head: the other visitor gets their two messages and not 'for you'"
    );
    assert_eq!(theirs[0]["data"]["text"], "not for you");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_receives_their_conversations_and_their_channels_queue_but_not_others() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, ada_token) = operator(state).await;
    let (bob, bob_token) = operator(state).await;
    let (carol, carol_token) = operator(state).await;
    let support = channel(state, &[ada, bob]).await;
    let sales = channel(state, &[carol]).await;
    let (mut ada_ws, _) = connect(&server, "", Some(&ada_token)).await;
    let (mut bob_ws, _) = connect(&server, "", Some(&bob_token)).await;
    let (mut carol_ws, _) = connect(&server, &format!("?access_token={carol_token}"), None).await;

    let (for_bob, _) = start(state, support, Some(bob)).await;
    say(state, for_bob, Party::Visitor, "for bob").await;
    let (in_sales, _) = start(state, sales, None).await;
    let (queued, _) = start(state, support, None).await;
    say(state, queued, Party::Visitor, "anyone there?").await;
    let (for_ada, _) = start(state, support, Some(ada)).await;
    say(state, for_ada, Party::Visitor, "hello ada").await;
    act(state, queued, |s| session::take(s, bob, "Bob", session::Assignment::Taken)).await;
    say(state, queued, Party::Operator { id: bob }, "bob here").await;
    execute::<Channel, _>(state.events.as_ref(), &stream_id::<Channel>(support), &ctx(), None, |c| {
        channel::join(c, ada)
    })
    .await
    .unwrap();
    act(state, in_sales, |s| session::take(s, carol, "Carol", session::Assignment::Taken)).await;
    say(state, for_ada, Party::Visitor, "end").await;

    let names = [(for_bob, "for_bob"), (in_sales, "in_sales"), (queued, "queued"), (for_ada, "for_ada")];
    let ada_frames = events_until(&mut ada_ws, text_is("end")).await;
    assert_eq!(
        summary(&ada_frames, &names),
        pairs(&[
            ("queued", "SessionStarted"),
            ("queued", "SessionQueued"),
            ("for_ada", "SessionStarted"),
            ("for_ada", "OperatorAssigned"),
            ("for_ada", "MessagePosted"),
            ("for_ada", "MessagePosted"),
            ("queued", "OperatorAssigned"),
            (&format!("channel-{support}"), "OperatorJoined"),
            ("for_ada", "MessagePosted"),
        ]),
        "Ada: her conversation, her channel's queue (and who took from it), her channel's presence; \
         not Bob's conversation, not the messages of the queued one, nothing of Sales"
    );
    assert_eq!(ada_frames[5]["data"]["text"], "hello ada");

    let bob_frames = events_until(&mut bob_ws, text_is("bob here")).await;
    assert_eq!(
        summary(&bob_frames, &names),
        pairs(&[
            ("for_bob", "SessionStarted"),
            ("for_bob", "OperatorAssigned"),
            ("for_bob", "MessagePosted"),
            ("for_bob", "MessagePosted"),
            ("queued", "SessionStarted"),
            ("queued", "SessionQueued"),
            ("queued", "OperatorAssigned"),
            ("queued", "MessagePosted"),
        ]),
        "Bob: his conversation with its messages, then the one he took; not the visitor's message \
         while it waited, nothing of Ada's conversation"
    );
    assert_eq!(bob_frames[3]["data"]["text"], "for bob");

    let carol_frames = events_until(&mut carol_ws, |f| f["event_type"] == "OperatorAssigned").await;
    assert_eq!(
        summary(&carol_frames, &names),
        pairs(&[("in_sales", "SessionStarted"), ("in_sales", "SessionQueued"), ("in_sales", "OperatorAssigned")]),
        "Carol: only the Sales queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transferred_conversation_moves_from_one_operators_stream_to_the_others() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, ada_token) = operator(state).await;
    let (bob, bob_token) = operator(state).await;
    let support = channel(state, &[ada, bob]).await;
    let (mut ada_ws, _) = connect(&server, "", Some(&ada_token)).await;
    let (mut bob_ws, _) = connect(&server, "", Some(&bob_token)).await;

    let (chat, _) = start(state, support, Some(ada)).await;
    say(state, chat, Party::Visitor, "before").await;
    act(state, chat, |s| session::transfer(s, Party::Operator { id: ada }, false, support, Some((bob, "Bob".into()))))
        .await;
    say(state, chat, Party::Visitor, "after").await;
    let (other, _) = start(state, support, Some(ada)).await;
    say(state, other, Party::Visitor, "ada's next").await;

    let names = [(chat, "chat"), (other, "other")];
    let ada_frames = events_until(&mut ada_ws, text_is("ada's next")).await;
    assert_eq!(
        summary(&ada_frames, &names),
        pairs(&[
            ("chat", "SessionStarted"),
            ("chat", "OperatorAssigned"),
            ("chat", "MessagePosted"),
            ("chat", "MessagePosted"),
            ("chat", "SessionTransferred"),
            ("other", "SessionStarted"),
            ("other", "OperatorAssigned"),
            ("other", "MessagePosted"),
            ("other", "MessagePosted"),
        ]),
        "Ada: the conversation up to the transfer that takes it away, nothing after"
    );
    let bob_frames = events_until(&mut bob_ws, text_is("after")).await;
    assert_eq!(
        summary(&bob_frames, &names),
        pairs(&[("chat", "OperatorAssigned"), ("chat", "MessagePosted")]),
        "Bob: the conversation from the assignment that hands it to him"
    );
    assert_eq!(bob_frames[0]["data"]["how"], "transferred");
    assert_eq!(bob_frames[0]["data"]["operator_id"], bob.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_with_from_replays_exactly_the_missed_frames() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, ada_token) = operator(state).await;
    let (bob, _) = operator(state).await;
    let support = channel(state, &[ada]).await;
    let elsewhere = channel(state, &[bob]).await;
    let (chat, _) = start(state, support, Some(ada)).await;

    let (mut ws, _) = connect(&server, "", Some(&ada_token)).await;
    let p1 = say(state, chat, Party::Visitor, "one").await;
    let got = events_until(&mut ws, text_is("one")).await;
    assert_eq!(got.len(), 1);
    assert_eq!(position_of(&got[0]), p1);
    ws.close(None).await.unwrap();
    drop(ws);

    // While Ada is away: two messages for her, and a conversation she may not see.
    let p2 = say(state, chat, Party::Visitor, "two").await;
    let (hidden, _) = start(state, elsewhere, Some(bob)).await;
    say(state, hidden, Party::Visitor, "not for ada").await;
    let p3 = say(state, chat, Party::Visitor, "three").await;

    let (mut ws, from) = connect(&server, &format!("?access_token={ada_token}&from={p1}"), None).await;
    assert_eq!(from, p1.to_string(), "ready announces where it resumes");
    let p4 = say(state, chat, Party::Visitor, "four").await;
    let replayed = events_until(&mut ws, text_is("four")).await;
    let positions: Vec<Position> = replayed.iter().map(position_of).collect();
    assert_eq!(positions, vec![p2, p3, p4], "exactly the missed frames, then live, each once and in order");
    let texts: Vec<&str> = replayed.iter().map(|f| f["data"]["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["two", "three", "four"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_it_answers_401_before_upgrading() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, ada_token) = operator(state).await;
    let support = channel(state, &[ada]).await;
    let (chat, visitor_token) = start(state, support, Some(ada)).await;

    let plain = reqwest::get(format!("{}/api/v1/stream", server.http)).await.unwrap();
    assert_eq!(plain.status().as_u16(), 401);
    assert_eq!(plain.headers()["content-type"], "application/problem+json");
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");

    let forged_visitor = format!("vt_{}_{}", chat.simple(), "A".repeat(43));
    let forged_operator = format!("lc_{}_{}", ada.simple(), "A".repeat(43));
    for (query, bearer) in [
        (String::new(), None),
        ("?access_token=nonsense".to_string(), None),
        (format!("?access_token={forged_visitor}"), None),
        (String::new(), Some(forged_operator.as_str())),
        // The header wins over the query string.
        (format!("?access_token={ada_token}"), Some(forged_operator.as_str())),
    ] {
        match try_connect(&server, &query, bearer).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{query} {bearer:?}")
            }
            other => panic!("{query} {bearer:?}: expected 401, got {other:?}"),
        }
    }

    // With a valid token, bad parameters are refused before upgrading too.
    for (query, status) in [("?from=yesterday", 422), ("?since=1", 400)] {
        match try_connect(&server, query, Some(&visitor_token)).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), status, "{query}"),
            other => panic!("{query}: expected {status}, got {other:?}"),
        }
    }
    // A valid token without a WebSocket handshake is not 401.
    let not_ws = reqwest::Client::new()
        .get(format!("{}/api/v1/stream", server.http))
        .bearer_auth(&ada_token)
        .send()
        .await
        .unwrap();
    assert!(not_ws.status().is_client_error() && not_ws.status().as_u16() != 401, "{}", not_ws.status());
    connect(&server, "", Some(&visitor_token)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_goes_to_the_other_party_and_never_into_the_log() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, ada_token) = operator(state).await;
    let (bob, bob_token) = operator(state).await;
    let support = channel(state, &[ada, bob]).await;
    let (chat, visitor_token) = start(state, support, Some(ada)).await;
    let (other_chat, _) = start(state, support, Some(bob)).await;
    let log_before = state.events.read_all(&ReadAll::forward(Position::START, 10_000)).await.unwrap();

    let (mut visitor, _) = connect(&server, &format!("?access_token={visitor_token}"), None).await;
    let (mut ada_ws, _) = connect(&server, "", Some(&ada_token)).await;
    let (mut bob_ws, _) = connect(&server, "", Some(&bob_token)).await;

    send(&mut visitor, json!({"type": "typing", "session_id": chat, "typing": true})).await;
    assert_eq!(
        frame(&mut ada_ws).await,
        json!({"type": "typing", "session_id": chat, "party": {"kind": "visitor"}, "typing": true})
    );
    send(&mut ada_ws, json!({"type": "typing", "session_id": chat, "typing": false})).await;
    assert_eq!(
        frame(&mut visitor).await,
        json!({"type": "typing", "session_id": chat, "party": {"kind": "operator", "id": ada}, "typing": false})
    );

    // Not a party: refused with an error frame, and nobody is told.
    send(&mut bob_ws, json!({"type": "typing", "session_id": chat, "typing": true})).await;
    let refused = frame(&mut bob_ws).await;
    assert_eq!(refused["type"], "error", "Bob got the visitor's typing or nothing: {refused}");
    send(&mut visitor, json!({"type": "typing", "session_id": other_chat, "typing": true})).await;
    assert_eq!(frame(&mut visitor).await["type"], "error");
    send(&mut visitor, json!({"type": "shout"})).await;
    assert_eq!(frame(&mut visitor).await["type"], "error");

    // Still nothing for Ada but the next real event.
    say(state, chat, Party::Visitor, "hi").await;
    let next = frame(&mut ada_ws).await;
    assert_eq!((next["type"].as_str(), next["data"]["text"].as_str()), (Some("event"), Some("hi")));

    let log_after = state.events.read_all(&ReadAll::forward(Position::START, 10_000)).await.unwrap();
    assert_eq!(log_after.len(), log_before.len() + 1, "only the message was appended");
    assert!(log_after.iter().all(|e| !e.event_type.to_lowercase().contains("typing")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_disconnected_with_the_position_to_resume_from() {
    let settings = StreamSettings { queue: 4, slow_after: Duration::from_millis(200), ..Default::default() };
    let server = memory_server(settings).await;
    let state = &server.state;
    let (_, admin_token) = user(state, Role::Admin).await;
    let channel_id = channel(state, &[]).await;
    let (mut ws, ready) = connect(&server, "", Some(&admin_token)).await;

    // The admin sees every conversation event but reads none: once the socket's buffers are
    // full and the 4-frame queue stays full for 200 ms, the server must give up on it.
    let big = "x".repeat(session::MAX_MESSAGE_CHARS);
    let mut appended = 0;
    for _ in 0..400 {
        let (chat, _) = start(state, channel_id, None).await;
        let ids: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        act(state, chat, |s| {
            let mut s = s.clone();
            let mut out = Vec::new();
            for id in &ids {
                let posted = session::post(&s, Party::Visitor, *id, &big)?;
                posted.iter().for_each(|e| s.apply(e));
                out.extend(posted);
            }
            Ok(out)
        })
        .await;
        appended += 52;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if state.signals.slow_consumers() > 0 {
            break;
        }
    }
    assert_eq!(state.signals.slow_consumers(), 1, "the slow consumer was noticed");

    // What it gets: the frames written before, then the close with where to resume.
    let mut last = ready;
    let mut received = 0;
    let close = loop {
        let message = tokio::time::timeout(PATIENCE, ws.next()).await.expect("frames, then a close").unwrap();
        match message.unwrap() {
            Message::Text(text) => {
                let f: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(f["type"], "event");
                last = f["position"].as_str().unwrap().to_string();
                received += 1;
            }
            Message::Close(close) => break close.expect("a close frame with a reason"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), format!("slow consumer: reconnect with ?from={last}"));
    assert!(received < appended, "it was cut off: {received} of {appended}");

    // Resuming there continues with the very next event of the log.
    let after: Position = last.parse().unwrap();
    let next = state.events.read_all(&ReadAll::forward(after, 1)).await.unwrap();
    let (mut ws, from) = connect(&server, &format!("?from={last}"), Some(&admin_token)).await;
    assert_eq!(from, last);
    assert_eq!(position_of(&frame(&mut ws).await), next[0].position);
}

/// Two servers, each with its own connections, on one fresh PostgreSQL database (`None`
/// without PostgreSQL).
async fn two_servers_on_postgres() -> Option<(Server, Server)> {
    let url = StoreUrl::Postgres(store::testkit::pg::fresh_database().await?);
    let store_a = Store::open(&url).await.unwrap();
    store_a.migrate().await.unwrap();
    let store_b = Store::open(&url).await.unwrap();
    let state_a = AppState::new(store_a.events(), store_a.views(), ApiConfig::default());
    let state_b = AppState::new(store_b.events(), store_b.views(), ApiConfig::default());
    Some((serve(state_a, None).await, serve(state_b, None).await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_an_event_appended_through_one_server_reaches_a_socket_on_another() {
    let Some((a, b)) = two_servers_on_postgres().await else { return };
    let state_a = &a.state;

    let (ada, ada_token) = operator(state_a).await;
    let support = channel(state_a, &[ada]).await;
    let (chat, visitor_token) = start(state_a, support, Some(ada)).await;

    let (mut visitor, _) = connect(&b, &format!("?access_token={visitor_token}"), None).await;
    let (mut ada_ws, _) = connect(&b, "", Some(&ada_token)).await;
    let position = say(state_a, chat, Party::Visitor, "across servers").await;

    for ws in [&mut visitor, &mut ada_ws] {
        let got = events_until(ws, text_is("across servers")).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(position_of(&got[0]), position);
        assert_eq!(got[0]["stream_id"], format!("session-{chat}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_typing_crosses_servers_and_still_never_enters_the_log() {
    let Some((a, b)) = two_servers_on_postgres().await else { return };
    let state_a = &a.state;
    let (ada, ada_token) = operator(state_a).await;
    let support = channel(state_a, &[ada]).await;
    let (chat, visitor_token) = start(state_a, support, Some(ada)).await;
    let events_before = state_a.events.head().await.unwrap();

    let (mut visitor, _) = connect(&a, &format!("?access_token={visitor_token}"), None).await;
    let (mut ada_ws, _) = connect(&b, "", Some(&ada_token)).await;
    // The other server's listener may still be connecting: a signal sent before that is lost
    // (signals are ephemeral), so type until it arrives.
    let mut got = None;
    for _ in 0..40 {
        send(&mut visitor, json!({"type": "typing", "session_id": chat, "typing": true})).await;
        if let Ok(f) = tokio::time::timeout(Duration::from_millis(250), frame(&mut ada_ws)).await {
            got = Some(f);
            break;
        }
    }
    assert_eq!(
        got.expect("the typing signal reached the other server"),
        json!({"type": "typing", "session_id": chat, "party": {"kind": "visitor"}, "typing": true})
    );
    send(&mut ada_ws, json!({"type": "typing", "session_id": chat, "typing": false})).await;
    assert_eq!(
        frame(&mut visitor).await,
        json!({"type": "typing", "session_id": chat, "party": {"kind": "operator", "id": ada}, "typing": false}),
        "and back, from server B to server A"
    );
    assert_eq!(state_a.events.head().await.unwrap(), events_before, "nothing was appended");
}

/// Every message that arrives within `window` (reading all along, so pings are answered).
async fn read_for(ws: &mut Ws, window: Duration) -> Vec<Message> {
    let mut got = Vec::new();
    let until = tokio::time::Instant::now() + window;
    while let Ok(Some(message)) = tokio::time::timeout_at(until, ws.next()).await {
        match message {
            Ok(m) => got.push(m),
            Err(_) => break,
        }
    }
    got
}

fn closed_with(messages: &[Message]) -> Option<(CloseCode, String)> {
    messages.iter().find_map(|m| match m {
        Message::Close(Some(c)) => Some((c.code, c.reason.as_str().to_string())),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_ends_the_stream_at_once() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, ada_token) = operator(state).await;
    let (mut ws, _) = connect(&server, "", Some(&ada_token)).await;
    execute::<User, _>(state.events.as_ref(), &stream_id::<User>(ada), &ctx(), None, user::deactivate).await.unwrap();
    let got = read_for(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(
        closed_with(&got),
        Some((CloseCode::Policy, "the token expired or was revoked: log in again".to_string())),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_closes_streams_with_where_to_resume() {
    let server = memory_server(StreamSettings::default()).await;
    let state = &server.state;
    let (ada, _) = operator(state).await;
    let support = channel(state, &[ada]).await;
    let (chat, token) = start(state, support, Some(ada)).await;
    let (mut ws, _) = connect(&server, "", Some(&token)).await;
    let p = say(state, chat, Party::Visitor, "last words").await;
    events_until(&mut ws, text_is("last words")).await;
    state.signals.shut_down();
    let got = read_for(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(
        closed_with(&got),
        Some((CloseCode::Away, format!("the server is shutting down: reconnect with ?from={p}"))),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_pings_is_closed_and_one_that_does_is_kept() {
    let settings = StreamSettings { ping_interval: Duration::from_millis(250), ..Default::default() };
    let server = memory_server(settings).await;
    let state = &server.state;
    let (_, token) = operator(state).await;
    let (mut deaf, _) = connect(&server, "", Some(&token)).await;
    let (mut alive, _) = connect(&server, "", Some(&token)).await;

    let kept = read_for(&mut alive, Duration::from_millis(1500)).await;
    assert!(kept.iter().any(|m| matches!(m, Message::Ping(_))), "the server pings: {kept:?}");
    assert_eq!(closed_with(&kept), None, "a client answering pings stays: {kept:?}");

    // `deaf` read nothing (so answered no ping) during those 1.5 s.
    let got = read_for(&mut deaf, Duration::from_secs(5)).await;
    assert_eq!(closed_with(&got), Some((CloseCode::Away, "no answer to pings".to_string())), "{got:?}");
}

/// An open stream is the operator's heartbeat: the inactivity rule leaves them alone while
/// it stays open, and takes them offline once it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_keeps_an_operator_active() {
    let store = Store::open(&StoreUrl::Memory).await.unwrap();
    let clock = Arc::new(commands::clock::ManualClock::new(Utc::now()));
    let settings = StreamSettings { recheck_token: Duration::from_millis(50), ..Default::default() };
    let mut state = AppState::new(store.events(), store.views(), ApiConfig::default()).with_clock(clock.clone());
    state.signals = Arc::new(Hub::new(settings));
    let server = serve(state, Some(&store)).await;
    let (ada, token) = operator(&server.state).await;
    let support = channel(&server.state, &[ada]).await;
    execute::<Channel, _>(server.state.events.as_ref(), &stream_id::<Channel>(support), &ctx(), None, |c| {
        channel::join(c, ada)
    })
    .await
    .unwrap();
    let joined = server.state.events.head().await.unwrap().unwrap();
    assert!(projections::wait_for(server.state.views.as_ref(), "channels", joined, PATIENCE).await.unwrap());

    let (ws, _) = connect(&server, "", Some(&token)).await;
    clock.advance(chrono::Duration::minutes(31));
    tokio::time::sleep(Duration::from_millis(300)).await; // a few token checks, each a heartbeat
    assert!(commands::presence::sweep(&server.state).await.unwrap().is_empty(), "the open stream counts as activity");

    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.advance(chrono::Duration::minutes(31));
    assert_eq!(commands::presence::sweep(&server.state).await.unwrap(), vec![ada], "no stream, no activity");
}

/// Connections that start while the log is being written switch from their own catch-up to
/// the node's shared feed without losing, repeating or reordering anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_from_catch_up_to_the_shared_feed_loses_nothing() {
    let server = memory_server(StreamSettings::default()).await;
    let state = server.state.clone();
    let (ada, _) = operator(&state).await;
    let support = channel(&state, &[ada]).await;
    let (session_id, _) = start(&state, support, Some(ada)).await;
    let (_, admin_token) = user(&state, Role::Admin).await;
    for n in 0..100 {
        say(&state, session_id, Party::Visitor, &format!("before {n}")).await;
    }
    let writer = {
        let state = state.clone();
        tokio::spawn(async move {
            for n in 0..200 {
                say(&state, session_id, Party::Visitor, &format!("during {n}")).await;
                if n % 20 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // Several connections starting from the beginning at different moments of the writing.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let (ws, _) = connect(&server, "?from=0:0", Some(&admin_token)).await;
        sockets.push(ws);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    for mut ws in sockets {
        let mut texts = Vec::new();
        while texts.len() < 300 {
            let f = frame(&mut ws).await;
            if f["event_type"] == "MessagePosted" && f["data"]["author"]["kind"] == "visitor" {
                texts.push(f["data"]["text"].as_str().unwrap().to_string());
            }
        }
        let expected: Vec<String> =
            (0..100).map(|n| format!("before {n}")).chain((0..200).map(|n| format!("during {n}"))).collect();
        assert_eq!(texts, expected, "every message once, in order");
    }
}
