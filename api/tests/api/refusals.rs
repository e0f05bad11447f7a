//! A refused command writes nothing: every refused request of the API (bad JSON, unknown
//! fields, 422 field errors, 404 unknown ids, 409 rule refusals, 401/403) leaves the log's
//! head where it was, on every write route. Collected from the rejection tests of the other
//! files, run one after the other against one scripted setup.

use crate::common::{self, Env};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// What a refused request sends.
enum Body {
    None,
    Json(Value),
    /// Sent as `application/json` as is (not JSON, or not the right shape).
    Raw(&'static str),
}

struct Refusal {
    what: String,
    method: Method,
    path: String,
    token: Option<String>,
    body: Body,
    if_match: Option<String>,
    status: u16,
}

fn refusal(what: &str, method: Method, path: String, token: Option<&str>, body: Body, status: u16) -> Refusal {
    Refusal { what: what.to_string(), method, path, token: token.map(str::to_string), body, if_match: None, status }
}

fn stale(mut r: Refusal, etag: &str) -> Refusal {
    r.if_match = Some(etag.to_string());
    r
}

async fn send(env: &Env, r: &Refusal) -> (u16, Value) {
    let mut req = env.http.request(r.method.clone(), format!("{}{}", env.base, r.path));
    if let Some(t) = &r.token {
        req = req.bearer_auth(t);
    }
    if let Some(v) = &r.if_match {
        req = req.header("If-Match", v);
    }
    req = match &r.body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Raw(text) => req.header("content-type", "application/json").body(*text),
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn id_of(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}")).to_string()
}

async fn ok(env: &Env, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let a = env.call(method.clone(), path, Some(token), body).await;
    assert!((200..300).contains(&a.status), "{method} {path}: {} {}", a.status, a.body);
    a.body
}

/// A visitor starts on `channel`: the session id, the visitor token and the answer.
async fn start(env: &Env, channel: &str, name: &str) -> (String, String, Value) {
    let path = format!("/api/v1/public/channels/{channel}/sessions");
    let a = env.call(Method::POST, &path, None, Some(json!({"name": name}))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    (id_of(&a.body, "session_id"), id_of(&a.body, "visitor_token"), a.body)
}

async fn etag(env: &Env, path: &str, token: &str) -> String {
    let a = env.call(Method::GET, path, Some(token), None).await;
    a.headers.get("etag").unwrap_or_else(|| panic!("ETag of {path}")).to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_refused_request_writes_anything() {
    let env = Env::start().await;
    let admin = env.admin.clone();
    let (ada, ada_t) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_t) = env.operator("bob@example.com", "Bob").await;
    let (_eve, eve_t) = env.operator("eve@example.com", "Eve").await;

    // Support: Ada (joined, one conversation at most) and Bob (not joined). Sales: Bob,
    // joined, with room, so that a start there would claim his slot before refusing.
    let support = env.channel("Support", &[ada, bob]).await;
    let sales = env.channel("Sales", &[bob]).await;
    let archived = env.channel("Old", &[]).await;
    ok(&env, Method::POST, &format!("/api/v1/channels/{archived}/archive"), &admin, None).await;
    let limit = json!({"max_conversations_per_operator": 1});
    ok(&env, Method::PUT, &format!("/api/v1/channels/{support}/options"), &admin, Some(limit)).await;
    ok(&env, Method::POST, &format!("/api/v1/channels/{support}/join"), &ada_t, None).await;
    ok(&env, Method::POST, &format!("/api/v1/channels/{sales}/join"), &bob_t, None).await;
    // Done: answered by Ada, then left by the visitor (closed, Ada's slot free again).
    let (done, done_v, _) = start(&env, &support, "Dora").await;
    let said =
        ok(&env, Method::POST, &format!("/api/v1/conversations/{done}/messages"), &ada_t, Some(json!({"text": "Hi"})))
            .await;
    let ada_message = id_of(&said, "message_id");
    ok(&env, Method::POST, &format!("/api/v1/public/sessions/{done}/leave"), &done_v, None).await;
    // Chat: Ada's (she is now at her limit); queued: waits (nobody else joined Support).
    let (chat, chat_v, chat_body) = start(&env, &support, "Marie").await;
    assert_eq!(chat_body["operator"]["id"], ada.to_string());
    let (queued, queued_v, queued_body) = start(&env, &support, "Zoe").await;
    assert_eq!(queued_body["status"], "waiting");
    let said = ok(
        &env,
        Method::POST,
        &format!("/api/v1/public/sessions/{chat}/messages"),
        &chat_v,
        Some(json!({"text": "Hello?"})),
    )
    .await;
    let visitor_message = id_of(&said, "message_id");

    let hello = ok(
        &env,
        Method::POST,
        "/api/v1/canned-responses",
        &ada_t,
        Some(json!({"shortcut": "hello", "text": "Hello!"})),
    )
    .await;
    let hello = id_of(&hello, "canned_response_id");
    let bye =
        ok(&env, Method::POST, "/api/v1/canned-responses", &bob_t, Some(json!({"shortcut": "bye", "text": "Bye!"})))
            .await;
    let bye = id_of(&bye, "canned_response_id");
    ok(&env, Method::POST, "/api/v1/canned-responses", &ada_t, Some(json!({"shortcut": "thanks", "text": "Thanks!"})))
        .await;
    let bot = ok(&env, Method::POST, "/api/v1/chatbots", &admin, Some(json!({"title": "Helper"}))).await;
    let bot = id_of(&bot, "chatbot_id");
    let step = json!({"step_type": "text", "message": "Hello!"});
    let steps = ok(&env, Method::POST, &format!("/api/v1/chatbots/{bot}/steps"), &admin, Some(step)).await;
    let text_step = id_of(&steps["steps"][0], "step_id");
    let rule = json!({"url_regex": "/shop"});
    let rules = ok(&env, Method::POST, &format!("/api/v1/channels/{support}/rules"), &admin, Some(rule)).await;
    let rule_id = id_of(&rules["rules"][0], "rule_id");

    let support_etag = etag(&env, &format!("/api/v1/channels/{support}"), &admin).await;
    let ada_etag = etag(&env, &format!("/api/v1/users/{ada}"), &admin).await;
    let hello_etag = etag(&env, &format!("/api/v1/canned-responses/{hello}"), &ada_t).await;
    let bot_etag = etag(&env, &format!("/api/v1/chatbots/{bot}"), &admin).await;
    // Bump each so that the ETags above are stale.
    ok(&env, Method::PATCH, &format!("/api/v1/channels/{support}"), &admin, Some(json!({"name": "Help"}))).await;
    ok(&env, Method::PATCH, &format!("/api/v1/users/{ada}"), &admin, Some(json!({"name": "Ada L."}))).await;
    ok(
        &env,
        Method::PATCH,
        &format!("/api/v1/canned-responses/{hello}"),
        &ada_t,
        Some(json!({"text": "Hello there!"})),
    )
    .await;
    ok(&env, Method::PATCH, &format!("/api/v1/chatbots/{bot}"), &admin, Some(json!({"title": "Helper bot"}))).await;

    let nobody = Uuid::now_v7();
    let (a, b, e) = (Some(admin.as_str()), Some(bob_t.as_str()), Some(eve_t.as_str()));
    let ad = Some(ada_t.as_str());
    use Body::{Json as J, None as N, Raw};
    use Method as M;
    let long = |n: usize| "x".repeat(n);
    let user = |p: &str| format!("/api/v1/users/{p}");
    let ch = |id: &str, p: &str| format!("/api/v1/channels/{id}{p}");
    let cb = |p: &str| format!("/api/v1/chatbots/{bot}{p}");
    let conv = |id: &str, p: &str| format!("/api/v1/conversations/{id}{p}");
    let public = |id: &str, p: &str| format!("/api/v1/public/sessions/{id}{p}");
    let starts = |id: &str| format!("/api/v1/public/channels/{id}/sessions");
    let canned = |id: &str| format!("/api/v1/canned-responses/{id}");
    let new_user = |login: &str| json!({"login": login, "password": common::PASSWORD, "name": "Someone"});
    #[rustfmt::skip]
    let refusals = vec![
        // Tokens
        refusal("wrong password", M::POST, "/api/v1/auth/token".into(), None, J(json!({"login": "ada@example.com", "password": "not it at all"})), 401),
        refusal("login not JSON", M::POST, "/api/v1/auth/token".into(), None, Raw("{"), 400),
        // Users
        refusal("operator creates a user", M::POST, "/api/v1/users".into(), ad, J(new_user("cy@example.com")), 403),
        refusal("login taken", M::POST, "/api/v1/users".into(), a, J(new_user("ADA@example.com")), 409),
        refusal("user fields invalid", M::POST, "/api/v1/users".into(), a, J(json!({"login": "ada", "password": "short", "name": " ", "languages": ["klingon!"], "country": "XX", "role": "boss"})), 422),
        refusal("user without fields", M::POST, "/api/v1/users".into(), a, J(json!({})), 422),
        refusal("user unknown field", M::POST, "/api/v1/users".into(), a, J(json!({"login": "cy@example.com", "password": common::PASSWORD, "name": "Cy", "age": 3})), 400),
        refusal("user not JSON", M::POST, "/api/v1/users".into(), a, Raw("[1,"), 400),
        refusal("edit someone else", M::PATCH, user(&bob.to_string()), ad, J(json!({"name": "Bobby"})), 403),
        refusal("promote oneself", M::PATCH, user(&ada.to_string()), ad, J(json!({"role": "admin"})), 403),
        refusal("profile invalid", M::PATCH, "/api/v1/me".into(), ad, J(json!({"name": "", "country": "XX"})), 422),
        refusal("demote oneself", M::PATCH, "/api/v1/me".into(), a, J(json!({"role": "operator"})), 409),
        stale(refusal("stale user edit", M::PATCH, user(&ada.to_string()), a, J(json!({"name": "Ada"})), 409), &ada_etag),
        refusal("edit unknown user", M::PATCH, user(&nobody.to_string()), a, J(json!({"name": "X"})), 404),
        refusal("password too short", M::PUT, user(&format!("{ada}/password")), ad, J(json!({"password": "short"})), 422),
        refusal("wrong current password", M::PUT, user(&format!("{ada}/password")), ad, J(json!({"password": "a brand new secret", "current_password": "nope nope nope"})), 403),
        refusal("operator deactivates", M::POST, user(&format!("{bob}/deactivate")), ad, N, 403),
        refusal("deactivate unknown", M::POST, user(&format!("{nobody}/deactivate")), a, N, 404),
        refusal("reactivate unknown", M::POST, user(&format!("{nobody}/reactivate")), a, N, 404),
        refusal("bad status", M::PUT, "/api/v1/me/status".into(), ad, J(json!({"status": "napping"})), 422),
        // Channels
        refusal("operator creates a channel", M::POST, "/api/v1/channels".into(), ad, J(json!({"name": "Mine"})), 403),
        refusal("blank channel name", M::POST, "/api/v1/channels".into(), a, J(json!({"name": " "})), 422),
        refusal("channel not JSON", M::POST, "/api/v1/channels".into(), a, Raw("nope"), 400),
        stale(refusal("stale rename", M::PATCH, ch(&support, ""), a, J(json!({"name": "Aid"})), 409), &support_etag),
        refusal("rename unknown channel", M::PATCH, ch(&nobody.to_string(), ""), a, J(json!({"name": "Aid"})), 404),
        refusal("rename archived", M::PATCH, ch(&archived, ""), a, J(json!({"name": "New"})), 409),
        refusal("bad regex", M::POST, ch(&support, "/rules"), a, J(json!({"url_regex": "/shop("})), 422),
        refusal("bad country", M::POST, ch(&support, "/rules"), a, J(json!({"countries": ["BE", "XX"]})), 422),
        refusal("unknown chatbot in rule", M::POST, ch(&support, "/rules"), a, J(json!({"chatbot_id": nobody})), 422),
        refusal("edit unknown rule", M::PUT, ch(&support, &format!("/rules/{nobody}")), a, J(json!({"url_regex": "/x"})), 404),
        refusal("remove unknown rule", M::DELETE, ch(&support, &format!("/rules/{nobody}")), a, N, 404),
        refusal("bad rule order", M::PUT, ch(&support, "/rules/order"), a, J(json!({"rule_ids": [rule_id, rule_id]})), 422),
        refusal("bad color", M::PUT, ch(&support, "/options"), a, J(json!({"header_color": "blue"})), 422),
        refusal("operator edits options", M::PUT, ch(&support, "/options"), ad, J(json!({"welcome_message": "Yo"})), 403),
        refusal("reset colors of unknown", M::POST, ch(&nobody.to_string(), "/options/reset-colors"), a, N, 404),
        refusal("operator twice", M::POST, ch(&support, "/operators"), a, J(json!({"user_id": ada})), 409),
        refusal("unknown operator", M::POST, ch(&support, "/operators"), a, J(json!({"user_id": nobody})), 422),
        refusal("remove non-operator", M::DELETE, ch(&support, &format!("/operators/{nobody}")), a, N, 409),
        refusal("new operator on unknown channel", M::POST, ch(&nobody.to_string(), "/operators/new"), a, J(new_user("cy@example.com")), 404),
        refusal("new operator on archived", M::POST, ch(&archived, "/operators/new"), a, J(new_user("cy@example.com")), 409),
        refusal("new operator with a taken login", M::POST, ch(&support, "/operators/new"), a, J(new_user("bob@example.com")), 409),
        refusal("new operator invalid", M::POST, ch(&support, "/operators/new"), a, J(json!({"login": "cy"})), 422),
        refusal("archive unknown", M::POST, ch(&nobody.to_string(), "/archive"), a, N, 404),
        refusal("join without being operator", M::POST, ch(&support, "/join"), e, N, 409),
        refusal("join unknown", M::POST, ch(&nobody.to_string(), "/join"), ad, N, 404),
        refusal("join archived", M::POST, ch(&archived, "/join"), ad, N, 409),
        // Chatbots
        refusal("blank title", M::POST, "/api/v1/chatbots".into(), a, J(json!({"title": "  "})), 422),
        refusal("operator creates a chatbot", M::POST, "/api/v1/chatbots".into(), ad, J(json!({"title": "Mine"})), 403),
        refusal("bad step type", M::POST, cb("/steps"), a, J(json!({"step_type": "dance", "message": "x"})), 422),
        refusal("answer on a text step", M::POST, cb(&format!("/steps/{text_step}/answers")), a, J(json!({"label": "Yes"})), 422),
        refusal("edit unknown step", M::PATCH, cb(&format!("/steps/{nobody}")), a, J(json!({"message": "x"})), 404),
        refusal("edit unknown chatbot", M::PATCH, format!("/api/v1/chatbots/{nobody}"), a, J(json!({"title": "x"})), 404),
        stale(refusal("stale chatbot edit", M::PATCH, cb(""), a, J(json!({"title": "Late"})), 409), &bot_etag),
        refusal("test unknown chatbot", M::POST, format!("/api/v1/chatbots/{nobody}/test"), a, N, 404),
        refusal("answer unknown dry run", M::POST, cb(&format!("/test/{nobody}/answer")), a, J(json!({"step_id": text_step})), 404),
        // Canned responses
        refusal("bad shortcut", M::POST, "/api/v1/canned-responses".into(), ad, J(json!({"shortcut": "no spaces", "text": "x"})), 422),
        refusal("empty canned text", M::POST, "/api/v1/canned-responses".into(), ad, J(json!({"shortcut": "x", "text": ""})), 422),
        refusal("operator shares", M::POST, "/api/v1/canned-responses".into(), ad, J(json!({"shortcut": "x", "text": "x", "shared": true})), 403),
        refusal("operator creates for another", M::POST, "/api/v1/canned-responses".into(), ad, J(json!({"shortcut": "x", "text": "x", "owner_id": bob})), 403),
        refusal("for an unknown owner", M::POST, "/api/v1/canned-responses".into(), a, J(json!({"shortcut": "x", "text": "x", "owner_id": nobody})), 422),
        refusal("shortcut taken", M::POST, "/api/v1/canned-responses".into(), ad, J(json!({"shortcut": "thanks", "text": "Again"})), 409),
        refusal("rename onto a taken shortcut", M::PATCH, canned(&hello), ad, J(json!({"shortcut": "thanks"})), 409),
        stale(refusal("stale rename to a free shortcut", M::PATCH, canned(&hello), ad, J(json!({"shortcut": "hi"})), 409), &hello_etag),
        refusal("edit someone else's", M::PATCH, canned(&bye), ad, J(json!({"text": "Mine now"})), 403),
        refusal("delete someone else's", M::DELETE, canned(&bye), ad, N, 403),
        refusal("delete unknown", M::DELETE, canned(&nobody.to_string()), ad, N, 404),
        // Conversations, operators' side
        refusal("message too long", M::POST, conv(&chat, "/messages"), ad, J(json!({"text": long(4001)})), 422),
        refusal("someone else's canned", M::POST, conv(&chat, "/messages"), ad, J(json!({"canned_response_id": bye})), 422),
        refusal("text and canned", M::POST, conv(&chat, "/messages"), ad, J(json!({"canned_response_id": hello, "text": "hi"})), 422),
        refusal("no text", M::POST, conv(&chat, "/messages"), ad, J(json!({})), 422),
        refusal("message unknown field", M::POST, conv(&chat, "/messages"), ad, J(json!({"text": "hi", "bold": true})), 400),
        refusal("post in someone else's", M::POST, conv(&chat, "/messages"), b, J(json!({"text": "hi"})), 403),
        refusal("post in unknown", M::POST, conv(&nobody.to_string(), "/messages"), ad, J(json!({"text": "hi"})), 404),
        refusal("post in closed", M::POST, conv(&done, "/messages"), ad, J(json!({"text": "hi"})), 409),
        refusal("reuse a message id", M::POST, conv(&chat, "/messages"), ad, J(json!({"message_id": visitor_message, "text": "mine"})), 409),
        refusal("edit the visitor's message", M::PATCH, conv(&chat, &format!("/messages/{visitor_message}")), ad, J(json!({"text": "x"})), 403),
        refusal("edit unknown message", M::PATCH, conv(&chat, &format!("/messages/{nobody}")), ad, J(json!({"text": "x"})), 404),
        refusal("edit in closed", M::PATCH, conv(&done, &format!("/messages/{ada_message}")), ad, J(json!({"text": "x"})), 409),
        refusal("delete unknown message", M::DELETE, conv(&chat, &format!("/messages/{nobody}")), ad, N, 404),
        refusal("seen unknown message", M::POST, conv(&chat, "/seen"), ad, J(json!({"up_to": nobody})), 404),
        refusal("take an active one", M::POST, conv(&chat, "/take"), b, N, 409),
        refusal("take a closed one", M::POST, conv(&done, "/take"), b, N, 409),
        refusal("take without being operator", M::POST, conv(&queued, "/take"), e, N, 403),
        refusal("take at capacity", M::POST, conv(&queued, "/take"), ad, N, 409),
        refusal("take unknown", M::POST, conv(&nobody.to_string(), "/take"), ad, N, 404),
        refusal("transfer someone else's", M::POST, conv(&chat, "/transfer"), b, J(json!({"operator_id": bob})), 403),
        refusal("transfer a closed one", M::POST, conv(&done, "/transfer"), a, J(json!({"operator_id": bob})), 409),
        refusal("transfer to a non-operator", M::POST, conv(&chat, "/transfer"), ad, J(json!({"operator_id": nobody})), 422),
        refusal("transfer to unknown channel", M::POST, conv(&chat, "/transfer"), ad, J(json!({"channel_id": nobody})), 404),
        refusal("transfer unknown field", M::POST, conv(&chat, "/transfer"), ad, J(json!({"to": bob})), 400),
        refusal("close someone else's", M::POST, conv(&chat, "/close"), b, N, 403),
        refusal("close unknown", M::POST, conv(&nobody.to_string(), "/close"), ad, N, 404),
        refusal("transcript bad address", M::POST, conv(&done, "/transcript"), ad, J(json!({"email": "x@-example.com"})), 422),
        refusal("transcript not yours", M::POST, conv(&done, "/transcript"), b, J(json!({"email": "m@example.com"})), 403),
        refusal("transcript unknown", M::POST, conv(&nobody.to_string(), "/transcript"), ad, J(json!({"email": "m@example.com"})), 404),
        // Visitors
        refusal("start: NUL in name", M::POST, starts(&sales), None, J(json!({"name": "Ma\u{0}rie"})), 422),
        refusal("start: name too long", M::POST, starts(&sales), None, J(json!({"name": long(101)})), 422),
        refusal("start: url too long", M::POST, starts(&sales), None, J(json!({"url": format!("/{}", long(2000))})), 422),
        refusal("start: bad language", M::POST, starts(&sales), None, J(json!({"languages": ["en", "klingon!"]})), 422),
        refusal("start: unknown field", M::POST, starts(&sales), None, J(json!({"nickname": "M"})), 400),
        refusal("start: not JSON", M::POST, starts(&sales), None, Raw("{\"name\":"), 400),
        refusal("start: unknown channel", M::POST, starts(&nobody.to_string()), None, J(json!({})), 404),
        refusal("start: archived channel", M::POST, starts(&archived), None, J(json!({})), 404),
        refusal("visitor message too long", M::POST, public(&chat, "/messages"), Some(&chat_v), J(json!({"text": long(4001)})), 422),
        refusal("visitor message NUL", M::POST, public(&chat, "/messages"), Some(&chat_v), J(json!({"text": "a\u{0}b"})), 422),
        refusal("visitor posts elsewhere", M::POST, public(&queued, "/messages"), Some(&chat_v), J(json!({"text": "hi"})), 403),
        refusal("visitor without token", M::POST, public(&chat, "/messages"), None, J(json!({"text": "hi"})), 401),
        refusal("visitor posts in closed", M::POST, public(&done, "/messages"), Some(&done_v), J(json!({"text": "hi"})), 409),
        refusal("visitor canned", M::POST, public(&chat, "/messages"), Some(&chat_v), J(json!({"canned_response_id": hello})), 400),
        refusal("page url too long", M::POST, public(&chat, "/pages"), Some(&chat_v), J(json!({"url": format!("/{}", long(2000))})), 422),
        refusal("visitor seen unknown", M::POST, public(&chat, "/seen"), Some(&chat_v), J(json!({"up_to": nobody})), 404),
        refusal("leave someone else's", M::POST, public(&chat, "/leave"), Some(&queued_v), N, 403),
        refusal("bot answer without a bot", M::POST, public(&chat, "/bot/answer"), Some(&chat_v), J(json!({"step_id": text_step})), 409),
        refusal("bot restart without a bot", M::POST, public(&chat, "/bot/restart"), Some(&chat_v), J(json!({})), 409),
        refusal("rating out of range", M::POST, public(&chat, "/rating"), Some(&chat_v), J(json!({"value": 4})), 422),
        refusal("rating feedback too long", M::POST, public(&chat, "/rating"), Some(&chat_v), J(json!({"value": 5, "feedback": long(4001)})), 422),
        refusal("rating not a number", M::POST, public(&chat, "/rating"), Some(&chat_v), J(json!({"value": "happy"})), 400),
        refusal("rating with nobody to rate", M::POST, public(&queued, "/rating"), Some(&queued_v), J(json!({"value": 5})), 422),
        refusal("rating by an operator", M::POST, public(&chat, "/rating"), ad, J(json!({"value": 5})), 401),
        refusal("visitor transcript while open", M::POST, public(&chat, "/transcript"), Some(&chat_v), J(json!({"email": "m@example.com"})), 409),
        refusal("visitor transcript bad address", M::POST, public(&done, "/transcript"), Some(&done_v), J(json!({"email": "marie@localhost"})), 422),
        refusal("visitor transcript unknown field", M::POST, public(&done, "/transcript"), Some(&done_v), J(json!({"email": "m@example.com", "bcc": "x@example.com"})), 400),
    ];

    let (mut wrote, mut wrong) = (Vec::new(), Vec::new());
    for r in &refusals {
        let before = env.state.events.head().await.unwrap();
        let (status, body) = send(&env, r).await;
        if status != r.status {
            wrong.push(format!("{}: {} {} answered {status}, not {}: {body}", r.what, r.method, r.path, r.status));
        }
        let after = env.state.events.head().await.unwrap();
        if after != before {
            let written =
                env.state.events.read_all(&store::ReadAll::forward(before.unwrap_or_default(), 10)).await.unwrap();
            let types: Vec<String> = written.iter().map(|e| format!("{} on {}", e.event_type, e.stream_id)).collect();
            wrote.push(format!("{} ({status}): {}", r.what, types.join(", ")));
        }
    }
    assert!(wrong.is_empty(), "unexpected answers:\n{}", wrong.join("\n"));
    assert!(wrote.is_empty(), "refused requests wrote events:\n{}", wrote.join("\n"));
    assert!(refusals.len() > 100, "{}", refusals.len());
}

/// A retried create (same `Idempotency-Key`) answers as the first request did and writes
/// nothing, even when its body names another login or shortcut: no claim is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_with_another_body_claims_nothing() {
    let env = Env::start().await;
    let (_, ada_t) = env.operator("ada@example.com", "Ada").await;
    let creates = [
        ("/api/v1/users", env.admin.clone(), "login", "cy@example.com", "dee@example.com"),
        ("/api/v1/canned-responses", ada_t, "shortcut", "hello", "howdy"),
    ];
    for (path, token, field, first, other) in creates {
        let body = |value: &str| match field {
            "login" => json!({"login": value, "password": common::PASSWORD, "name": "Cy"}),
            _ => json!({"shortcut": value, "text": "Hello!"}),
        };
        let key = [("idempotency-key", "create-1")];
        let created = env.call_with(Method::POST, path, Some(&token), Some(body(first)), &key).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let before = env.state.events.head().await.unwrap();
        let retried = env.call_with(Method::POST, path, Some(&token), Some(body(other)), &key).await;
        assert_eq!((retried.status, &retried.body), (201, &created.body), "answered as the first");
        assert_eq!(env.state.events.head().await.unwrap(), before, "{path}: the retry wrote nothing");
        // And the other value is still free.
        let again = env.call(Method::POST, path, Some(&token), Some(body(other))).await;
        assert_eq!(again.status, 201, "{}", again.body);
    }
}
