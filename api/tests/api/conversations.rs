//! Conversations over real HTTP: visitors start, write and leave; operators get them routed,
//! answer, mark seen, take from the queue, transfer and close.

use crate::common::{Answer, Env};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn start(env: &Env, channel: &str, body: Value) -> Answer {
    env.call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(body)).await
}

async fn join(env: &Env, channel: &str, token: &str) {
    let a = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// Waits until the operator's inbox has caught up with `position`.
async fn inbox(env: &Env, token: &str, position: &str) -> Value {
    let a = env.call(Method::GET, &format!("/api/v1/conversations?min_position={position}"), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_and_an_operator_chat_until_the_visitor_leaves() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    join(&env, &channel, &ada_token).await;

    let started = start(&env, &channel, json!({"name": "Marie", "url": "/shop"})).await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.body["status"], "active");
    assert_eq!(started.body["operator"]["name"], "Ada (support)", "the chat name, never the login");
    assert!(!started.body.to_string().contains("ada@example.com"));
    assert_eq!(started.body["welcome"]["text"], "Hello, how may I help you?");
    assert_eq!(started.body["welcome"]["author"]["name"], "Ada (support)");
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();
    let vpath = |rest: &str| format!("/api/v1/public/sessions/{session}{rest}");
    let opath = |rest: &str| format!("/api/v1/conversations/{session}{rest}");

    // The visitor writes; a retried post with the same id is one message with the same answer.
    let mid = Uuid::now_v7();
    let first = env
        .call(
            Method::POST,
            &vpath("/messages"),
            Some(&visitor),
            Some(json!({"message_id": mid, "text": "Is my order <b>shipped</b>?"})),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = env
        .call(
            Method::POST,
            &vpath("/messages"),
            Some(&visitor),
            Some(json!({"message_id": mid, "text": "Is my order <b>shipped</b>?"})),
        )
        .await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    let reused = env
        .call(Method::POST, &vpath("/messages"), Some(&visitor), Some(json!({"message_id": mid, "text": "other"})))
        .await;
    assert_eq!(reused.status, 409);
    let visit = env.call(Method::POST, &vpath("/pages"), Some(&visitor), Some(json!({"url": "/shop/cart"}))).await;
    assert_eq!(visit.status, 204);

    // The operator's inbox shows it with one unread message.
    let body = inbox(&env, &ada_token, &first.position()).await;
    let conv = &body["conversations"][0];
    assert_eq!((conv["session_id"].as_str(), conv["unread_for_operator"].as_u64()), (Some(session.as_str()), Some(1)));
    assert_eq!(conv["visitor_name"], "Marie");
    let detail = env.call(Method::GET, &opath(""), Some(&ada_token), None).await;
    assert_eq!(detail.body["pages"], json!(["/shop", "/shop/cart"]));

    // The operator answers and marks the visitor's message seen; the visitor sees it.
    let answer =
        env.call(Method::POST, &opath("/messages"), Some(&ada_token), Some(json!({"text": "Let me check."}))).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let seen = env.call(Method::POST, &opath("/seen"), Some(&ada_token), Some(json!({"up_to": mid}))).await;
    assert_eq!(seen.status, 204, "{}", seen.body);
    let visitor_view = env.call(Method::GET, &vpath(""), Some(&visitor), None).await;
    assert_eq!(visitor_view.body["seen_by_operator"], mid.to_string());
    let history = env.call(Method::GET, &vpath("/messages"), Some(&visitor), None).await;
    let texts: Vec<_> =
        history.body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["Hello, how may I help you?", "Is my order <b>shipped</b>?", "Let me check."]);
    let older =
        env.call(Method::GET, &format!("{}?before={mid}&limit=5", vpath("/messages")), Some(&visitor), None).await;
    assert_eq!(older.body["messages"].as_array().unwrap().len(), 1);

    // The operator edits their message; the history marks it.
    let answer_id = answer.body["message_id"].as_str().unwrap();
    let edited = env
        .call(
            Method::PATCH,
            &opath(&format!("/messages/{answer_id}")),
            Some(&ada_token),
            Some(json!({"text": "Let me check, one moment."})),
        )
        .await;
    assert_eq!((edited.status, edited.body["edited"].as_bool()), (200, Some(true)), "{}", edited.body);

    // The visitor leaves: closed with a system message; nobody can write any more.
    assert_eq!(env.call(Method::POST, &vpath("/leave"), Some(&visitor), None).await.status, 204);
    let history = env.call(Method::GET, &opath("/messages"), Some(&ada_token), None).await;
    let last = history.body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["author"]["kind"].as_str(), last["text"].as_str()),
        (Some("system"), Some("Visitor left the conversation."))
    );
    let late_v = env.call(Method::POST, &vpath("/messages"), Some(&visitor), Some(json!({"text": "wait"}))).await;
    let late_o = env.call(Method::POST, &opath("/messages"), Some(&ada_token), Some(json!({"text": "bye"}))).await;
    assert_eq!((late_v.status, late_o.status), (409, 409));
    assert_eq!(late_o.body["code"], "conversation-closed");
    let long = start(&env, &channel, json!({})).await;
    let token = long.body["visitor_token"].as_str().unwrap();
    let id = long.body["session_id"].as_str().unwrap();
    let too_long = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{id}/messages"),
            Some(token),
            Some(json!({"text": "x".repeat(4001)})),
        )
        .await;
    assert_eq!((too_long.status, too_long.body["errors"][0]["field"].as_str()), (422, Some("text")));
    assert!(long.body["operator"].is_object(), "the slot freed by the closed conversation is usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_available_queues_and_the_first_operator_to_take_it_wins() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Sales", &[ada, bob]).await;

    let first = start(&env, &channel, json!({"name": "First"})).await;
    assert_eq!((first.status, first.body["status"].as_str()), (201, Some("waiting")), "{}", first.body);
    assert_eq!(first.body["notice"], "No available collaborator, please try again later.");
    assert!(first.body["welcome"].is_null());
    let first_token = first.body["visitor_token"].as_str().unwrap().to_string();
    let first_id = first.body["session_id"].as_str().unwrap().to_string();
    // The visitor can still leave a message.
    let left = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{first_id}/messages"),
            Some(&first_token),
            Some(json!({"text": "Call me back?"})),
        )
        .await;
    assert_eq!(left.status, 201);
    let second = start(&env, &channel, json!({"name": "Second"})).await;
    let second_id = second.body["session_id"].as_str().unwrap().to_string();
    let second_token = second.body["visitor_token"].as_str().unwrap().to_string();

    // Operators see the queue, oldest first; visitors see their position.
    let mut queue = Value::Null;
    for _ in 0..100 {
        queue = env.call(Method::GET, &format!("/api/v1/channels/{channel}/queue"), Some(&ada_token), None).await.body;
        if queue["conversations"].as_array().is_some_and(|c| c.len() == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let names: Vec<_> =
        queue["conversations"].as_array().unwrap().iter().map(|c| c["visitor_name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["First", "Second"]);
    let pos = env.call(Method::GET, &format!("/api/v1/public/sessions/{second_id}"), Some(&second_token), None).await;
    assert_eq!(pos.body["queue_position"], 2);

    // Two operators take the first at once: exactly one wins.
    let take = format!("/api/v1/conversations/{first_id}/take");
    let (a, b) = tokio::join!(
        env.call(Method::POST, &take, Some(&ada_token), None),
        env.call(Method::POST, &take, Some(&bob_token), None)
    );
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409], "{} / {}", a.body, b.body);
    let winner = if a.status == 200 { &a } else { &b };
    assert_eq!(winner.body["status"], "active");

    // When an operator joins, the oldest waiting conversation is routed to them.
    join(&env, &channel, &bob_token).await;
    let second_now =
        env.call(Method::GET, &format!("/api/v1/public/sessions/{second_id}"), Some(&second_token), None).await;
    assert_eq!(second_now.body["status"], "active", "{}", second_now.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_active_operator_gets_it_and_a_maximum_holds() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Help", &[ada, bob]).await;
    let set = env
        .call(
            Method::PUT,
            &format!("/api/v1/channels/{channel}/options"),
            Some(&env.admin),
            Some(json!({"max_conversations_per_operator": 1})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    join(&env, &channel, &ada_token).await;
    join(&env, &channel, &bob_token).await;

    let one = start(&env, &channel, json!({})).await;
    let two = start(&env, &channel, json!({})).await;
    let three = start(&env, &channel, json!({})).await;
    let ops = [&one, &two].map(|s| s.body["operator"]["id"].as_str().unwrap().to_string());
    assert_ne!(ops[0], ops[1], "the second goes to the less busy operator");
    assert_eq!(three.body["status"], "waiting", "both are at their maximum of 1");

    // Closing one frees a slot: the waiting conversation is routed to that operator.
    let (closer, closer_token) = if ops[0] == ada.to_string() { (ada, &ada_token) } else { (bob, &bob_token) };
    let one_id = one.body["session_id"].as_str().unwrap();
    assert_eq!(
        env.call(Method::POST, &format!("/api/v1/conversations/{one_id}/close"), Some(closer_token), None).await.status,
        204
    );
    let three_id = three.body["session_id"].as_str().unwrap();
    let three_token = three.body["visitor_token"].as_str().unwrap();
    let mut now = Value::Null;
    for _ in 0..100 {
        now = env.call(Method::GET, &format!("/api/v1/public/sessions/{three_id}"), Some(three_token), None).await.body;
        if now["status"] == "active" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(now["operator"]["id"], closer.to_string(), "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_keep_the_attribution_and_access_is_scoped() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let (_, eve_token) = env.operator("eve@example.com", "Eve").await;
    let channel = env.channel("Care", &[ada, bob]).await;
    join(&env, &channel, &ada_token).await;
    let s = start(&env, &channel, json!({"name": "Paul"})).await;
    let id = s.body["session_id"].as_str().unwrap().to_string();
    let token = s.body["visitor_token"].as_str().unwrap().to_string();
    let other = start(&env, &channel, json!({})).await;
    let other_id = other.body["session_id"].as_str().unwrap().to_string();

    // A visitor token opens its own conversation only.
    let cross =
        env.call(Method::GET, &format!("/api/v1/public/sessions/{other_id}/messages"), Some(&token), None).await;
    assert_eq!(cross.status, 403);
    let cross_post = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{other_id}/messages"),
            Some(&token),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(cross_post.status, 403);
    assert_eq!(env.call(Method::GET, &format!("/api/v1/public/sessions/{id}"), None, None).await.status, 401);
    assert_eq!(
        env.call(Method::GET, &format!("/api/v1/public/sessions/{id}"), Some(&ada_token), None).await.status,
        401,
        "an operator token is not a visitor token"
    );
    // An operator cannot read or write a conversation that is not theirs; admins can read all.
    let path = |rest: &str| format!("/api/v1/conversations/{id}{rest}");
    assert_eq!(env.call(Method::GET, &path("/messages"), Some(&eve_token), None).await.status, 403);
    let intrude = env.call(Method::POST, &path("/messages"), Some(&bob_token), Some(json!({"text": "hi"}))).await;
    assert_eq!((intrude.status, intrude.body["code"].as_str()), (403, Some("not-your-conversation")));
    assert_eq!(env.call(Method::GET, &path("/messages"), Some(&env.admin), None).await.status, 200);

    // Ada hands it to Bob: Bob answers, Ada no longer can, and both are on record.
    let moved = env.call(Method::POST, &path("/transfer"), Some(&ada_token), Some(json!({"operator_id": bob}))).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["handlers"], json!([ada, bob]));
    assert_eq!(
        env.call(Method::POST, &path("/messages"), Some(&bob_token), Some(json!({"text": "Bob here"}))).await.status,
        201
    );
    assert_eq!(
        env.call(Method::POST, &path("/messages"), Some(&ada_token), Some(json!({"text": "still me"}))).await.status,
        403
    );
    assert_eq!(
        env.call(Method::GET, &path("/messages"), Some(&ada_token), None).await.status,
        200,
        "a past handler may read"
    );
    let bad = env
        .call(Method::POST, &path("/transfer"), Some(&bob_token), Some(json!({"operator_id": Uuid::now_v7()})))
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(env.call(Method::POST, &path("/close"), Some(&bob_token), None).await.status, 204);
    let visitor_view = env.call(Method::GET, &format!("/api/v1/public/sessions/{id}"), Some(&token), None).await;
    assert_eq!(visitor_view.body["status"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_the_visitor_never_wrote_in_is_abandoned_and_not_counted() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Quiet", &[ada]).await;
    join(&env, &channel, &ada_token).await;
    let silent = start(&env, &channel, json!({})).await;
    let talkative = start(&env, &channel, json!({})).await;
    let (t_id, t_token) =
        (talkative.body["session_id"].as_str().unwrap(), talkative.body["visitor_token"].as_str().unwrap());
    let wrote = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{t_id}/messages"),
            Some(t_token),
            Some(json!({"text": "hi"})),
        )
        .await;
    inbox(&env, &ada_token, &wrote.position()).await;

    // Not yet an hour: nothing happens.
    assert_eq!(commands::conversations::abandon_idle(&env.state).await.unwrap(), 0);
    env.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(commands::conversations::abandon_idle(&env.state).await.unwrap(), 1);
    assert_eq!(commands::conversations::abandon_idle(&env.state).await.unwrap(), 0, "once");
    let s_id = silent.body["session_id"].as_str().unwrap();
    let s_token = silent.body["visitor_token"].as_str().unwrap();
    let view = env.call(Method::GET, &format!("/api/v1/public/sessions/{s_id}"), Some(s_token), None).await;
    assert_eq!(view.body["status"], "closed");
    let log = env
        .call(Method::GET, &format!("/api/v1/events?stream=session-{s_id}&order=desc&limit=1"), Some(&env.admin), None)
        .await;
    assert_eq!(log.body["events"][0]["data"]["reason"], "abandoned");

    // The dashboard counts the conversation the visitor took part in, not the abandoned one.
    let at = log.body["events"][0]["position"].as_str().unwrap();
    let mut count = Value::Null;
    for _ in 0..100 {
        let dash = env.call(Method::GET, &format!("/api/v1/channels?min_position={at}"), Some(&ada_token), None).await;
        count = dash.body["channels"].as_array().unwrap().iter().find(|c| c["channel_id"] == channel.as_str()).unwrap()
            ["conversation_count"]
            .clone();
        if count == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(count, 1);
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(env: &Env, token: &str, from: Option<&str>) -> Ws {
    let base = env.base.replacen("http://", "ws://", 1);
    let from = from.map(|f| format!("&from={f}")).unwrap_or_default();
    let url = format!("{base}/api/v1/stream?access_token={token}{from}");
    let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("websocket");
    socket
}

/// The next JSON frame of `kind` (others are skipped), within 10 s.
async fn next(socket: &mut Ws, kind: &str) -> Value {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

/// The next event frame of this event type.
async fn next_event(socket: &mut Ws, event_type: &str) -> Value {
    loop {
        let f = next(socket, "event").await;
        if f["event_type"] == event_type {
            return f;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_story_over_http_and_websocket() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, _) = env.operator("bob@example.com", "Bob").await;
    // The default channel, with both as operators; Ada joins.
    let dash = env.call(Method::GET, "/api/v1/channels", Some(&env.admin), None).await;
    let default = dash.body["channels"][0]["channel_id"].as_str().unwrap().to_string();
    for op in [ada, bob] {
        let a = env
            .call(
                Method::POST,
                &format!("/api/v1/channels/{default}/operators"),
                Some(&env.admin),
                Some(json!({"user_id": op})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    join(&env, &default, &ada_token).await;
    let mut ada_ws = ws(&env, &ada_token, None).await;
    next(&mut ada_ws, "ready").await;

    // A visitor starts a chat and is greeted by Ada.
    let started = start(&env, &default, json!({"name": "Marie"})).await;
    assert_eq!(started.body["welcome"]["author"]["name"], "Ada (support)");
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();
    let mut marie_ws = ws(&env, &visitor, None).await;
    let ready = next(&mut marie_ws, "ready").await;
    let routed = next_event(&mut ada_ws, "OperatorAssigned").await;
    assert_eq!(routed["stream_id"], format!("session-{session}"));

    // They exchange messages; each side receives the other's.
    let vpath = |rest: &str| format!("/api/v1/public/sessions/{session}{rest}");
    let opath = |rest: &str| format!("/api/v1/conversations/{session}{rest}");
    let hello = env.call(Method::POST, &vpath("/messages"), Some(&visitor), Some(json!({"text": "Hello!"}))).await;
    let heard = next_event(&mut ada_ws, "MessagePosted").await;
    let heard = if heard["data"]["text"] == "Hello!" { heard } else { next_event(&mut ada_ws, "MessagePosted").await };
    assert_eq!(heard["data"]["text"], "Hello!");
    let unread = inbox(&env, &ada_token, &hello.position()).await;
    assert_eq!(unread["conversations"][0]["unread_for_operator"], 1);
    env.call(Method::POST, &opath("/messages"), Some(&ada_token), Some(json!({"text": "Hi Marie!"}))).await;
    let answer = next_event(&mut marie_ws, "MessagePosted").await;
    let answer =
        if answer["data"]["text"] == "Hi Marie!" { answer } else { next_event(&mut marie_ws, "MessagePosted").await };
    assert_eq!(answer["data"]["text"], "Hi Marie!");
    assert!(!answer.to_string().contains("ada@example.com"));

    // Ada marks it seen: the visitor is told.
    let hello_id = hello.body["message_id"].as_str().unwrap();
    env.call(Method::POST, &opath("/seen"), Some(&ada_token), Some(json!({"up_to": hello_id}))).await;
    let seen = next_event(&mut marie_ws, "MessagesSeen").await;
    assert_eq!(seen["data"]["up_to"], hello_id);
    let last_seen_position = seen["position"].as_str().unwrap().to_string();

    // The visitor drops off; two messages arrive meanwhile; a reconnect with ?from= replays
    // exactly those, in order, and then goes on live.
    drop(marie_ws);
    for text in ["Are you there?", "I found it."] {
        let a = env.call(Method::POST, &opath("/messages"), Some(&ada_token), Some(json!({"text": text}))).await;
        assert_eq!(a.status, 201);
    }
    let mut again = ws(&env, &visitor, Some(&last_seen_position)).await;
    next(&mut again, "ready").await;
    let first = next(&mut again, "event").await;
    let second = next(&mut again, "event").await;
    assert_eq!(
        (first["data"]["text"].as_str(), second["data"]["text"].as_str()),
        (Some("Are you there?"), Some("I found it."))
    );
    assert!(first["position"].as_str().unwrap() != last_seen_position, "nothing twice");
    assert!(ready["position"].is_string());

    // Ada transfers to Bob, who closes it; the visitor sees it close.
    let moved = env.call(Method::POST, &opath("/transfer"), Some(&ada_token), Some(json!({"operator_id": bob}))).await;
    assert_eq!((moved.status, moved.body["handlers"].clone()), (200, json!([ada, bob])), "{}", moved.body);
    let bob_token = env.login("bob@example.com").await;
    assert_eq!(env.call(Method::POST, &opath("/close"), Some(&bob_token), None).await.status, 204);
    let closed = next_event(&mut again, "SessionClosed").await;
    assert_eq!(closed["data"]["reason"], "closed_by_operator");
    let late =
        env.call(Method::POST, &vpath("/messages"), Some(&visitor), Some(json!({"text": "one more thing"}))).await;
    assert_eq!(late.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_pages_newest_first_and_filters_by_state() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Pages", &[ada]).await;
    join(&env, &channel, &ada_token).await;
    let mut last = String::new();
    let mut ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        let s = start(&env, &channel, json!({"name": name})).await;
        let (id, token) =
            (s.body["session_id"].as_str().unwrap().to_string(), s.body["visitor_token"].as_str().unwrap().to_string());
        let a = env
            .call(
                Method::POST,
                &format!("/api/v1/public/sessions/{id}/messages"),
                Some(&token),
                Some(json!({"text": name})),
            )
            .await;
        last = a.position();
        ids.push(id);
    }
    inbox(&env, &ada_token, &last).await;
    let first = env.call(Method::GET, "/api/v1/conversations?limit=2", Some(&ada_token), None).await;
    let names = |v: &Value| -> Vec<String> {
        v["conversations"].as_array().unwrap().iter().map(|c| c["visitor_name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&first.body), vec!["Three", "Two"], "newest activity first");
    let cursor = first.body["next_cursor"].as_str().expect("a cursor while more remain").to_string();
    let second =
        env.call(Method::GET, &format!("/api/v1/conversations?limit=2&cursor={cursor}"), Some(&ada_token), None).await;
    assert_eq!(names(&second.body), vec!["One"]);
    assert!(second.body.get("next_cursor").is_none());

    // Closing one moves it to the closed filter.
    let closed =
        env.call(Method::POST, &format!("/api/v1/conversations/{}/close", ids[1]), Some(&ada_token), None).await;
    assert_eq!(closed.status, 204);
    let mut closed_list = Value::Null;
    for _ in 0..100 {
        closed_list = env.call(Method::GET, "/api/v1/conversations?state=closed", Some(&ada_token), None).await.body;
        if !names(&closed_list).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(names(&closed_list), vec!["Two"]);
    let active = env
        .call(Method::GET, &format!("/api/v1/conversations?state=active&channel={channel}"), Some(&ada_token), None)
        .await;
    assert_eq!(names(&active.body).len(), 2);
    let bad = env.call(Method::GET, "/api/v1/conversations?state=sleeping", Some(&ada_token), None).await;
    assert_eq!((bad.status, bad.body["errors"][0]["field"].as_str()), (422, Some("state")));
}
