//! Chatbots end to end through the real server: scripts edited by an administrator, a rule
//! starting the bot "only if no operator", the visitor answering over HTTP and following over
//! the WebSocket stream, and the hand-off to an operator who joined meanwhile.

use std::time::Duration;

use crate::common::{Answer, Env};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn admin(env: &Env, method: Method, path: &str, body: Option<Value>) -> Answer {
    env.call(method, &format!("/api/v1/chatbots{path}"), Some(&env.admin), body).await
}

/// The support script: a greeting, a choice (one answer redirects), an email question, a
/// forward, and what the bot says when nobody is found. Returns its id and its steps' ids.
async fn support_script(env: &Env) -> (String, Vec<String>, Vec<String>) {
    let created = admin(env, Method::POST, "", Some(json!({"title": "Support bot"}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["chatbot_id"].as_str().unwrap().to_string();
    let steps = [
        ("text", "Hello! I am the support bot."),
        ("question_selection", "What can I do for you?"),
        ("question_email", "What is your email?"),
        ("forward_operator", "Let me find someone for you."),
        ("text", "Nobody is around: we will write to you."),
    ];
    let mut step_ids = vec![];
    for (t, m) in steps {
        let a = admin(env, Method::POST, &format!("/{id}/steps"), Some(json!({"step_type": t, "message": m}))).await;
        assert_eq!(a.status, 201, "{}", a.body);
        step_ids.push(a.body["steps"].as_array().unwrap().last().unwrap()["step_id"].as_str().unwrap().to_string());
    }
    let mut answer_ids = vec![];
    for (label, link) in [("Buy something", None), ("Read the docs", Some("https://example.com/docs"))] {
        let a = admin(
            env,
            Method::POST,
            &format!("/{id}/steps/{}/answers", step_ids[1]),
            Some(json!({"label": label, "redirect_link": link})),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        answer_ids.push(
            a.body["steps"][1]["answers"].as_array().unwrap().last().unwrap()["answer_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    (id, step_ids, answer_ids)
}

/// A channel with Ada as its operator (not joined: nobody is available) and a rule starting
/// the bot only if no operator is available.
async fn channel_with_bot(env: &Env, chatbot: &str) -> (String, String, String) {
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    let rules = format!("/api/v1/channels/{channel}/rules");
    // A rule may only name a script that exists.
    let unknown = json!({"action": "show", "chatbot_id": uuid::Uuid::now_v7()});
    let refused = env.call(Method::POST, &rules, Some(&env.admin), Some(unknown)).await;
    assert_eq!(
        (refused.status, refused.body["errors"][0]["field"].as_str()),
        (422, Some("chatbot_id")),
        "{}",
        refused.body
    );
    let rule = json!({"action": "show", "chatbot_id": chatbot, "chatbot_only_if_no_operator": true});
    let a = env.call(Method::POST, &rules, Some(&env.admin), Some(rule)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    (channel, ada.to_string(), ada_token)
}

async fn start(env: &Env, channel: &str) -> Answer {
    env.call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({"url": "/shop"})))
        .await
}

async fn answer(env: &Env, session: &str, token: &str, body: Value) -> Answer {
    env.call(Method::POST, &format!("/api/v1/public/sessions/{session}/bot/answer"), Some(token), Some(body)).await
}

fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}: {}", m["author"]["kind"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect()
}

/// `value` with every UUID replaced by its order of appearance (`[id 1]`, `[id 2]`...), so
/// that snapshots show which ids are the same without depending on them.
fn anonymous(value: Value) -> Value {
    fn walk(v: Value, seen: &mut Vec<String>) -> Value {
        match v {
            Value::String(s) if uuid::Uuid::try_parse(&s).is_ok() => {
                let n = seen.iter().position(|x| *x == s).unwrap_or_else(|| {
                    seen.push(s.clone());
                    seen.len() - 1
                });
                Value::String(format!("[id {}]", n + 1))
            }
            Value::Array(a) => Value::Array(a.into_iter().map(|x| walk(x, seen)).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, x)| (k, walk(x, seen))).collect()),
            other => other,
        }
    }
    walk(value, &mut vec![])
}

async fn connect(env: &Env, token: &str) -> Ws {
    let url = format!("{}/api/v1/stream?access_token={token}", env.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("the stream opens");
    assert_eq!(frame(&mut ws).await["type"], "ready");
    ws
}

async fn frame(ws: &mut Ws) -> Value {
    loop {
        let m =
            tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame in time").unwrap().unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Event types received until (and including) the one `last` picks.
async fn events_until(ws: &mut Ws, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = vec![];
    loop {
        let f = frame(ws).await;
        if f["type"] != "event" {
            continue;
        }
        let done = last(&f);
        out.push(f);
        if done {
            return out;
        }
    }
}

#[tokio::test]
async fn the_bot_greets_asks_and_forwards_to_an_operator_who_joined_meanwhile() {
    let env = Env::start().await;
    let (chatbot, steps, answers) = support_script(&env).await;
    let (channel, ada, ada_token) = channel_with_bot(&env, &chatbot).await;

    // The widget learns about the bot and its welcome.
    let init = env.call(Method::GET, &format!("/api/v1/public/channels/{channel}/init?url=/shop"), None, None).await;
    assert_eq!(init.status, 200, "{}", init.body);
    let welcome: Vec<&str> = init.body["chatbot"]["welcome_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["message"].as_str().unwrap())
        .collect();
    assert_eq!(init.body["chatbot"]["name"], "Support bot");
    assert_eq!(welcome, vec!["Hello! I am the support bot.", "What can I do for you?"]);
    assert_eq!(init.body["show_button"], true, "the bot answers although nobody is available");

    // Nobody is available: the bot greets and asks.
    let started = start(&env, &channel).await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.body["status"], "bot", "{}", started.body);
    assert_eq!(started.body["queue_position"], Value::Null, "not queued while the bot answers");
    let expects = &started.body["bot"]["expects"];
    assert_eq!(
        (expects["step_id"].as_str(), expects["step_type"].as_str()),
        (Some(steps[1].as_str()), Some("question_selection"))
    );
    assert_eq!(expects["answers"][1]["redirect_link"], "https://example.com/docs");
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();
    let history =
        env.call(Method::GET, &format!("/api/v1/public/sessions/{session}/messages"), Some(&visitor), None).await;
    assert_eq!(
        texts(&history.body["messages"]),
        vec!["bot: Hello! I am the support bot.", "bot: What can I do for you?"]
    );

    // Editing the script now does not change this conversation: it follows its version.
    let edited = admin(
        &env,
        Method::PATCH,
        &format!("/{chatbot}/steps/{}", steps[2]),
        Some(json!({"message": "Your email, please?"})),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.body);

    let mut visitor_ws = connect(&env, &visitor).await;
    let choice =
        json!({"step_id": steps[1], "answer_id": answers[0], "message_id": "0190a000-0000-7000-8000-000000000001"});
    let chose = answer(&env, &session, &visitor, choice.clone()).await;
    assert_eq!(chose.status, 200, "{}", chose.body);
    assert_eq!(texts(&chose.body["messages"]), vec!["visitor: Buy something", "bot: What is your email?"]);
    // A double click: answered once.
    let twice = answer(&env, &session, &visitor, choice).await;
    assert_eq!((twice.status, texts(&twice.body["messages"]).len()), (200, 2), "{}", twice.body);
    let other = answer(&env, &session, &visitor, json!({"step_id": steps[1], "answer_id": answers[1]})).await;
    assert_eq!((other.status, other.body["messages"].as_array().map(Vec::len)), (200, Some(0)), "{}", other.body);
    // The bot's messages reach the visitor over the stream.
    let frames = events_until(&mut visitor_ws, |f| f["event_type"] == "ChatbotStepPosted").await;
    let types: Vec<&str> = frames.iter().map(|f| f["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["ChatbotAnswered", "ChatbotStepPosted"]);
    assert_eq!(frames[1]["data"]["text"], "What is your email?");

    // Ada joins meanwhile; an invalid email is asked again, then the bot forwards to her.
    let mut ada_ws = connect(&env, &ada_token).await;
    let joined = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let bad = answer(&env, &session, &visitor, json!({"step_id": steps[2], "text": "marie@"})).await;
    assert_eq!(
        texts(&bad.body["messages"]),
        vec!["visitor: marie@", "bot: 'marie@' does not look like a valid email. Can you please try again?"]
    );
    assert_eq!(bad.body["session"]["bot"]["expects"]["step_id"], steps[2].as_str());
    let good = answer(&env, &session, &visitor, json!({"step_id": steps[2], "text": "marie@example.com"})).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(
        texts(&good.body["messages"]),
        vec![
            "visitor: marie@example.com",
            "bot: Let me find someone for you.",
            "system: Ada (support) has joined",
            "system: Collected by Support bot:\nWhat can I do for you?: Buy something\nEmail: marie@example.com",
        ]
    );
    let s = &good.body["session"];
    assert_eq!((s["status"].as_str(), s["operator"]["id"].as_str()), (Some("active"), Some(ada.as_str())));
    assert_eq!((s["bot"]["state"].as_str(), &s["bot"]["expects"]), (Some("forwarded"), &Value::Null));

    // Ada gets the conversation live and reads what the bot collected.
    let ada_frames = events_until(&mut ada_ws, |f| f["event_type"] == "ChatbotEnded").await;
    let ada_types: Vec<&str> = ada_frames.iter().map(|f| f["event_type"].as_str().unwrap()).collect();
    assert!(ada_types.contains(&"OperatorAssigned") && ada_types.contains(&"MessagePosted"), "{ada_types:?}");
    let detail =
        env.call(Method::GET, &format!("/api/v1/conversations/{session}/messages"), Some(&ada_token), None).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let all = texts(&detail.body["messages"]);
    assert!(all.contains(&"visitor: Buy something".to_string()), "{all:?}");
    assert!(all.last().unwrap().contains("Email: marie@example.com"), "{all:?}");
    let detail = env.call(Method::GET, &format!("/api/v1/conversations/{session}"), Some(&ada_token), None).await;
    assert_eq!(
        detail.body["collected"],
        json!([
            {"question": "What can I do for you?", "kind": "choice", "answer": "Buy something"},
            {"question": detail.body["collected"][1]["question"], "kind": "email", "answer": "marie@example.com"},
        ]),
        "the operator's view of the conversation has the answers, structured"
    );
    // The bot is done: answering again is a conflict, not a new message.
    let late = answer(&env, &session, &visitor, json!({"step_id": steps[4], "text": "hello?"})).await;
    assert_eq!((late.status, late.body["code"].as_str()), (409, Some("bot-not-running")), "{}", late.body);

    // With an operator online, the bot does not start.
    let routed = start(&env, &channel).await;
    assert_eq!(routed.status, 201, "{}", routed.body);
    assert_eq!((routed.body["status"].as_str(), &routed.body["bot"]), (Some("active"), &Value::Null));
    let init = env.call(Method::GET, &format!("/api/v1/public/channels/{channel}/init?url=/shop"), None, None).await;
    assert_eq!(init.body["chatbot"], Value::Null);
}

#[tokio::test]
async fn without_an_operator_the_script_ends_in_the_queue_and_can_restart() {
    let env = Env::start().await;
    let (chatbot, steps, answers) = support_script(&env).await;
    let (channel, _, _) = channel_with_bot(&env, &chatbot).await;
    let started = start(&env, &channel).await;
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();
    answer(&env, &session, &visitor, json!({"step_id": steps[1], "answer_id": answers[0]})).await;
    // While the bot waits for typed text, a plain message is the answer.
    let typed = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{session}/messages"),
            Some(&visitor),
            Some(json!({"text": "marie@example.com"})),
        )
        .await;
    assert_eq!((typed.status, typed.body["author"]["kind"].as_str()), (201, Some("visitor")), "{}", typed.body);
    let typed_id = typed.body["message_id"].as_str().unwrap();
    let done = env.call(Method::GET, &format!("/api/v1/public/sessions/{session}"), Some(&visitor), None).await;
    let after = env
        .call(
            Method::GET,
            &format!("/api/v1/public/sessions/{session}/messages?after={typed_id}"),
            Some(&visitor),
            None,
        )
        .await;
    assert_eq!(
        texts(&after.body["messages"]),
        vec![
            "bot: Nobody is around: we will write to you.",
            "system: Collected by Support bot:\nWhat can I do for you?: Buy something\nEmail: marie@example.com",
        ],
        "nobody found: the bot says nothing about it and goes on"
    );
    assert_eq!((done.body["status"].as_str(), done.body["bot"]["state"].as_str()), (Some("waiting"), Some("finished")));
    // It is in the channel's queue with the contact details.
    let mut queued = false;
    for _ in 0..100 {
        let q = env.call(Method::GET, &format!("/api/v1/channels/{channel}/queue"), Some(&env.admin), None).await;
        if q.body.to_string().contains(&session) {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(queued, "the conversation reached the queue");
    // The run as stored: every bot message, answer and step change is an event.
    let log = env
        .call(Method::GET, &format!("/api/v1/events?stream=session-{session}&limit=100"), Some(&env.admin), None)
        .await;
    assert_eq!(log.status, 200, "{}", log.body);
    let stored: Vec<Value> = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"event_type": e["event_type"], "data": e["data"]}))
        .collect();
    // One numbering for the whole run: the same id is the same number in every event.
    let stored = anonymous(Value::Array(stored));
    insta::assert_json_snapshot!("bot_run_events", stored, {
        "[0].data.visitor_token_sha256" => "[digest]", "[0].data.visitor_name" => "[name]"
    });

    // Restart: earlier answers stay in the log but no longer count.
    let path = format!("/api/v1/public/sessions/{session}/bot/restart");
    let restarted = env.call(Method::POST, &path, Some(&visitor), Some(json!({}))).await;
    assert_eq!(restarted.status, 200, "{}", restarted.body);
    assert_eq!(
        texts(&restarted.body["messages"]),
        vec!["bot: Restarting conversation...", "bot: Hello! I am the support bot.", "bot: What can I do for you?"]
    );
    assert_eq!(restarted.body["session"]["status"], "bot");
    let redirect = answer(&env, &session, &visitor, json!({"step_id": steps[1], "answer_id": answers[1]})).await;
    let bot = &redirect.body["session"]["bot"];
    assert_eq!(
        (bot["state"].as_str(), bot["redirect_link"].as_str()),
        (Some("redirected"), Some("https://example.com/docs"))
    );
    let all = env.call(Method::GET, &format!("/api/v1/public/sessions/{session}/messages"), Some(&visitor), None).await;
    assert!(texts(&all.body["messages"]).contains(&"visitor: marie@example.com".to_string()), "the log keeps it");
}

#[tokio::test]
async fn scripts_are_validated_versioned_and_admin_only() {
    let env = Env::start().await;
    let (chatbot, steps, answers) = support_script(&env).await;
    let shown = admin(&env, Method::GET, &format!("/{chatbot}"), None).await;
    assert_eq!(shown.status, 200);
    let version = shown.body["version"].as_u64().unwrap();
    assert_eq!(shown.headers["etag"].to_str().unwrap(), format!("\"{version}\""));
    assert_eq!(shown.body["warnings"], json!([]));
    assert_eq!(shown.body["author_name"], "Support bot");

    // A rename moves the author name with it; every edit bumps the version; a stale edit is 409.
    let renamed = env
        .call_with(
            Method::PATCH,
            &format!("/api/v1/chatbots/{chatbot}"),
            Some(&env.admin),
            Some(json!({"title": "Helper"})),
            &[("if-match", &format!("\"{version}\""))],
        )
        .await;
    assert_eq!((renamed.status, renamed.body["author_name"].as_str()), (200, Some("Helper")), "{}", renamed.body);
    assert_eq!(renamed.body["version"].as_u64(), Some(version + 1));
    let stale = env
        .call_with(
            Method::PATCH,
            &format!("/api/v1/chatbots/{chatbot}"),
            Some(&env.admin),
            Some(json!({"title": "Other"})),
            &[("if-match", &format!("\"{version}\""))],
        )
        .await;
    assert_eq!((stale.status, stale.body["code"].as_str()), (409, Some("version-conflict")));

    // Conditions: only earlier steps' answers; reordering prunes the ones left pointing forward.
    let later =
        admin(&env, Method::PATCH, &format!("/{chatbot}/steps/{}", steps[0]), Some(json!({"only_if": [answers[0]]})))
            .await;
    assert_eq!((later.status, later.body["errors"][0]["field"].as_str()), (422, Some("only_if[0]")), "{}", later.body);
    let cond =
        admin(&env, Method::PATCH, &format!("/{chatbot}/steps/{}", steps[2]), Some(json!({"only_if": [answers[0]]})))
            .await;
    assert_eq!(cond.body["steps"][2]["only_if"], json!([answers[0]]));
    let order = json!({"order": [steps[0], steps[2], steps[1], steps[3], steps[4]]});
    let reordered = admin(&env, Method::PUT, &format!("/{chatbot}/steps/order"), Some(order)).await;
    assert_eq!(reordered.status, 200, "{}", reordered.body);
    assert_eq!(reordered.body["steps"][1]["only_if"], json!([]), "pruned");
    // The welcome now ends at the email question: still fine. Remove the questions: warned.
    let mut last_write = String::new();
    for s in [&steps[1], &steps[2]] {
        let removed = admin(&env, Method::DELETE, &format!("/{chatbot}/steps/{s}"), None).await;
        assert_eq!(removed.status, 200, "{}", removed.body);
        last_write = removed.position();
    }
    let warned = admin(&env, Method::GET, &format!("/{chatbot}"), None).await;
    assert_eq!(warned.body["warnings"], json!(["first_step_operator"]));

    // Bad input is 422 with field errors; unknown things are 404; operators are refused.
    let bad =
        admin(&env, Method::POST, &format!("/{chatbot}/steps"), Some(json!({"step_type": "dance", "message": "x"})))
            .await;
    assert_eq!((bad.status, bad.body["errors"][0]["field"].as_str()), (422, Some("step_type")));
    let blank = admin(&env, Method::POST, "", Some(json!({"title": "  "}))).await;
    assert_eq!((blank.status, blank.body["errors"][0]["field"].as_str()), (422, Some("title")));
    let on_text =
        admin(&env, Method::POST, &format!("/{chatbot}/steps/{}/answers", steps[0]), Some(json!({"label": "Yes"})))
            .await;
    assert_eq!(on_text.status, 422, "{}", on_text.body);
    let nothing = admin(&env, Method::GET, &format!("/{}", uuid::Uuid::now_v7()), None).await;
    assert_eq!(nothing.status, 404);
    let (_, op_token) = env.operator("bob@example.com", "Bob").await;
    let refused = env.call(Method::GET, "/api/v1/chatbots", Some(&op_token), None).await;
    assert_eq!(refused.status, 403);

    // The list (a view) shows it after the last write.
    let listed =
        env.call(Method::GET, &format!("/api/v1/chatbots?min_position={last_write}"), Some(&env.admin), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let first = &listed.body["chatbots"][0];
    assert_eq!((first["title"].as_str(), first["step_count"].as_u64()), (Some("Helper"), Some(3)));
    insta::assert_json_snapshot!("chatbot_listed", first, { ".chatbot_id" => "[id]" });
}

#[tokio::test]
async fn admins_dry_run_a_script_outside_conversations_and_reports() {
    let env = Env::start().await;
    let (chatbot, steps, answers) = support_script(&env).await;
    let started = admin(&env, Method::POST, &format!("/{chatbot}/test"), None).await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.body["state"], "running");
    assert_eq!(started.body["expects"]["step_id"], steps[1].as_str());
    let test_id = started.body["test_id"].as_str().unwrap().to_string();
    let path = format!("/{chatbot}/test/{test_id}/answer");
    admin(&env, Method::POST, &path, Some(json!({"step_id": steps[1], "answer_id": answers[0]}))).await;
    let done = admin(&env, Method::POST, &path, Some(json!({"step_id": steps[2], "text": "marie@example.com"}))).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let said: Vec<String> = done.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}: {}", m["author"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        said[..5],
        [
            "bot: Hello! I am the support bot.",
            "bot: What can I do for you?",
            "visitor: Buy something",
            "bot: What is your email?",
            "visitor: marie@example.com"
        ]
    );
    assert_eq!(said[5], "bot: Nobody is around: we will write to you.", "a dry run routes to nobody");
    assert_eq!((done.body["state"].as_str(), done.body["notes"].as_array().map(Vec::len)), (Some("finished"), Some(1)));
    // Its events are in a stream category of their own: no conversation, queue or report sees it.
    let sessions = env.call(Method::GET, "/api/v1/events?category=session", Some(&env.admin), None).await;
    let tests = env.call(Method::GET, "/api/v1/events?category=bottest", Some(&env.admin), None).await;
    assert_eq!(sessions.body["events"], json!([]), "{}", sessions.body);
    assert!(tests.body["events"].as_array().is_some_and(|e| e.len() > 5), "{}", tests.body);
    let other = admin(
        &env,
        Method::POST,
        &format!("/{}/test/{test_id}/answer", uuid::Uuid::now_v7()),
        Some(json!({"step_id": steps[1]})),
    )
    .await;
    assert_eq!(other.status, 404, "a dry run answers only for its own chatbot");
    let (_, op_token) = env.operator("bob@example.com", "Bob").await;
    let refused = env.call(Method::POST, &format!("/api/v1/chatbots/{chatbot}/test"), Some(&op_token), None).await;
    assert_eq!(refused.status, 403);
}
