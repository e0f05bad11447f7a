//! Ratings over real HTTP: a visitor rates a conversation (open or ended), the rating shows in
//! the history and on the operator's stream, ratings are listed with filters, the dashboard
//! shows each channel's share of happy ratings over 14 days, and a published channel has a
//! public ratings page.

use std::time::Duration;

use crate::common::{Answer, Env};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// A conversation started by a visitor; its id and the visitor's token.
struct Chat {
    id: String,
    token: String,
}

async fn join(env: &Env, channel: &str, token: &str) {
    let a = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

async fn chat(env: &Env, channel: &str, name: &str) -> Chat {
    let a = env
        .call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({"name": name})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let chat = Chat {
        id: a.body["session_id"].as_str().unwrap().to_string(),
        token: a.body["visitor_token"].as_str().unwrap().to_string(),
    };
    let said = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{}/messages", chat.id),
            Some(&chat.token),
            Some(json!({"text": "Where is my order?"})),
        )
        .await;
    assert_eq!(said.status, 201, "{}", said.body);
    chat
}

async fn leave(env: &Env, c: &Chat) {
    let a = env.call(Method::POST, &format!("/api/v1/public/sessions/{}/leave", c.id), Some(&c.token), None).await;
    assert_eq!(a.status, 204, "{}", a.body);
}

async fn rate(env: &Env, c: &Chat, body: Value) -> Answer {
    env.call(Method::POST, &format!("/api/v1/public/sessions/{}/rating", c.id), Some(&c.token), Some(body)).await
}

async fn rated(env: &Env, c: &Chat, value: i64, feedback: Option<&str>) -> String {
    let a = rate(env, c, json!({"value": value, "feedback": feedback})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.position()
}

/// The dashboard card of `channel`, once the views have reached `position`.
async fn card(env: &Env, channel: &str, position: &str) -> Value {
    card_for(env, &env.admin, channel, position).await
}

async fn card_for(env: &Env, token: &str, channel: &str, position: &str) -> Value {
    let a = env.call(Method::GET, &format!("/api/v1/channels?min_position={position}"), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["channels"].as_array().unwrap().iter().find(|c| c["channel_id"] == channel).unwrap().clone()
}

async fn ratings(env: &Env, token: &str, query: &str) -> Answer {
    env.call(Method::GET, &format!("/api/v1/ratings{query}"), Some(token), None).await
}

/// Asks `path` until `done` holds for the answer (public routes have no `min_position`).
async fn eventually(env: &Env, path: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = env.call(Method::GET, path, None, None).await;
        if done(&a) {
            return a;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never got there: {} {}", a.status, a.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn set_public(env: &Env, admin: &str, channel: &str, public: bool) -> Answer {
    let a = env
        .call(
            Method::PUT,
            &format!("/api/v1/channels/{channel}/options"),
            Some(admin),
            Some(json!({"ratings_public": public})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_chat_rated_unhappy_shows_in_the_history_on_the_dashboard_and_on_the_public_page() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    join(&env, &channel, &ada_token).await;

    let first = chat(&env, &channel, "Marie").await;
    leave(&env, &first).await;
    assert_eq!(card(&env, &channel, "0:0").await["satisfaction_percent"], Value::Null, "nothing rated yet");

    // The visitor rates the ended chat: unhappy, with feedback.
    let answer = rate(&env, &first, json!({"value": 1, "feedback": "Nobody <b>answered</b>.\nI left."})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    insta::assert_json_snapshot!("rated_unhappy", answer.body, {
        ".message_id" => "[id]", ".posted_at" => "[time]"
    });
    let history = env
        .call(Method::GET, &format!("/api/v1/public/sessions/{}/messages", first.id), Some(&first.token), None)
        .await;
    let last = history.body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["text"], &last["author"]["kind"]),
        (&json!("Rating: Unhappy\nNobody <b>answered</b>.\nI left."), &json!("system"))
    );
    assert_eq!(last["message_id"], answer.body["message_id"]);
    let operator_side =
        env.call(Method::GET, &format!("/api/v1/conversations/{}/messages", first.id), Some(&ada_token), None).await;
    assert_eq!(operator_side.body["messages"].as_array().unwrap().last().unwrap()["text"], last["text"]);
    assert_eq!(card(&env, &channel, &answer.position()).await["satisfaction_percent"], 0);

    // A second chat, rated happy while still open: half of the rated chats are happy.
    let second = chat(&env, &channel, "Jules").await;
    let position = rated(&env, &second, 5, None).await;
    assert_eq!(card(&env, &channel, &position).await["satisfaction_percent"], 50);

    // Not published: no page, whatever exists.
    let page = format!("/api/v1/public/channels/{channel}/ratings");
    let html = format!("/livechat/channel/{channel}");
    assert_eq!(env.call(Method::GET, &page, None, None).await.status, 404);
    assert_eq!(env.call(Method::GET, &html, None, None).await.status, 404);
    let form = set_public(&env, &env.admin, &channel, true).await;
    assert_eq!(form.body["options"]["ratings_public"], true);

    let published = eventually(&env, &page, |a| a.status == 200 && a.body["rating_count"] == 2).await;
    assert_eq!(published.headers["access-control-allow-origin"], "*");
    insta::assert_json_snapshot!("public_ratings", published.body, {
        ".channel_id" => "[id]", ".latest[].rated_at" => "[time]"
    });
    let text = published.body.to_string();
    assert!(!text.contains("Marie") && !text.contains("Jules"), "no visitor names: {text}");
    assert!(!text.contains(&first.id) && !text.contains(&second.id), "no conversation ids");

    let page_html = env.call(Method::GET, &html, None, None).await;
    assert_eq!(page_html.status, 200);
    assert_eq!(page_html.headers["content-type"], "text/html; charset=utf-8");
    assert!(page_html.headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    let body = page_html.body.as_str().unwrap();
    assert!(body.contains("Nobody &lt;b&gt;answered&lt;/b&gt;.<br>I left."), "{body}");
    assert!(body.contains("Happy: 50%") && body.contains("Unhappy: 50%"), "{body}");
    assert!(!body.contains("<b>") && !body.contains("<script") && !body.contains("Marie"), "{body}");

    // Fifteen days later the dashboard's 14-day window is empty; the public page is all-time.
    env.clock.advance(chrono::Duration::days(15));
    let admin = env.login("admin@example.com").await; // the first token expired meanwhile
    assert_eq!(card_for(&env, &admin, &channel, &position).await["satisfaction_percent"], Value::Null);
    assert_eq!(env.call(Method::GET, &page, None, None).await.body["rating_count"], 2);

    // Withdrawn or archived: 404 again.
    set_public(&env, &admin, &channel, false).await;
    eventually(&env, &page, |a| a.status == 404).await;
    set_public(&env, &admin, &channel, true).await;
    eventually(&env, &page, |a| a.status == 200).await;
    let archived = env.call(Method::POST, &format!("/api/v1/channels/{channel}/archive"), Some(&admin), None).await;
    assert_eq!(archived.status, 200);
    eventually(&env, &html, |a| a.status == 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_rating_replaces_the_earlier_one_and_both_stay_in_the_history() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    join(&env, &channel, &ada_token).await;
    let c = chat(&env, &channel, "Marie").await;

    // A retried rating (same message id) is one rating with the same answer.
    let mid = Uuid::now_v7();
    let once = rate(&env, &c, json!({"value": 3, "feedback": "ok", "message_id": mid})).await;
    let twice = rate(&env, &c, json!({"value": 3, "feedback": "ok", "message_id": mid})).await;
    assert_eq!((once.status, twice.status), (201, 201));
    assert_eq!(once.body, twice.body);
    let reused = rate(&env, &c, json!({"value": 5, "message_id": mid})).await;
    assert_eq!((reused.status, reused.body["code"].as_str()), (409, Some("message-id-reused")));

    leave(&env, &c).await;
    let position = rated(&env, &c, 5, Some("Sorted out in the end")).await;
    let list = ratings(&env, &env.admin, &format!("?min_position={position}")).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let all = list.body["ratings"].as_array().unwrap();
    assert_eq!(all.len(), 1, "one rating per conversation: {}", list.body);
    assert_eq!(
        (&all[0]["value"], &all[0]["rating"], &all[0]["feedback"], &all[0]["times_rated"]),
        (&json!(5), &json!("happy"), &json!("Sorted out in the end"), &json!(2))
    );
    assert_eq!(card(&env, &channel, &position).await["satisfaction_percent"], 100);
    // The operator's inbox shows the rating as the conversation's latest message.
    let inbox =
        env.call(Method::GET, &format!("/api/v1/conversations?min_position={position}"), Some(&ada_token), None).await;
    assert_eq!(inbox.body["conversations"][0]["last_message"], "Rating: Happy\nSorted out in the end");
    let history =
        env.call(Method::GET, &format!("/api/v1/public/sessions/{}/messages", c.id), Some(&c.token), None).await;
    let texts: Vec<&str> = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"].as_str().unwrap().starts_with("Rating: "))
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["Rating: Neutral\nok", "Rating: Happy\nSorted out in the end"]);
    // The log keeps both.
    let events = env
        .call(
            Method::GET,
            &format!("/api/v1/events?stream=session-{}&event_type=ConversationRated", c.id),
            Some(&env.admin),
            None,
        )
        .await;
    assert_eq!(events.body["events"].as_array().map(Vec::len), Some(2), "{}", events.body);
}

/// One rule for every view: a conversation counts in the channel it started in, its rating
/// too, even when it was moved to another channel before the visitor rated it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_moved_to_another_channel_is_counted_and_rated_where_it_started() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let shop = env.channel("Shop", &[ada]).await;
    let help = env.channel("Help", &[bob]).await;
    join(&env, &shop, &ada_token).await;
    join(&env, &help, &bob_token).await;

    // Started in Shop with Ada, handed to Bob in Help, then rated happy.
    let c = chat(&env, &shop, "Marie").await;
    let moved = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{}/transfer", c.id),
            Some(&ada_token),
            Some(json!({"channel_id": help, "operator_id": bob})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let position = rated(&env, &c, 5, None).await;

    // The dashboard: the conversation and its rating in Shop, nothing in Help.
    let (shop_card, help_card) = (card(&env, &shop, &position).await, card(&env, &help, &position).await);
    assert_eq!(
        (&shop_card["conversation_count"], &shop_card["satisfaction_percent"]),
        (&json!(1), &json!(100)),
        "{shop_card}"
    );
    assert_eq!(
        (&help_card["conversation_count"], &help_card["satisfaction_percent"]),
        (&json!(0), &Value::Null),
        "{help_card}"
    );
    // The ratings list: under Shop, for Bob (who had it when it was rated).
    let listed = ratings(&env, &env.admin, &format!("?channel_id={shop}&min_position={position}")).await;
    assert_eq!(listed.body["ratings"][0]["operator_id"], bob.to_string(), "{}", listed.body);
    assert_eq!(listed.body["ratings"][0]["channel_id"], shop, "{}", listed.body);
    let elsewhere = ratings(&env, &env.admin, &format!("?channel_id={help}&min_position={position}")).await;
    assert_eq!(elsewhere.body["ratings"], json!([]));
    // The reports: the same channel.
    let report = env
        .call(
            Method::GET,
            &format!(
                "/api/v1/reports/conversations?group_by=channel&measures=count,satisfaction_percent&min_position={position}"
            ),
            Some(&env.admin),
            None,
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["rows"], json!([{"channel": shop, "count": 1, "satisfaction_percent": 100.0}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_are_refused_with_a_problem_document() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    join(&env, &channel, &ada_token).await;
    let mine = chat(&env, &channel, "Marie").await;
    let theirs = chat(&env, &channel, "Jules").await;

    // Another conversation's token.
    let other = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{}/rating", theirs.id),
            Some(&mine.token),
            Some(json!({"value": 5})),
        )
        .await;
    assert_eq!((other.status, other.body["code"].as_str()), (403, Some("not-your-conversation")));
    // No token, or an operator's.
    let path = format!("/api/v1/public/sessions/{}/rating", mine.id);
    assert_eq!(env.call(Method::POST, &path, None, Some(json!({"value": 5}))).await.status, 401);
    assert_eq!(env.call(Method::POST, &path, Some(&ada_token), Some(json!({"value": 5}))).await.status, 401);
    // Out of range.
    for value in [0, 2, 4, 6, -5, 1000] {
        let a = rate(&env, &mine, json!({"value": value})).await;
        assert_eq!(a.status, 422, "{value}: {}", a.body);
        assert_eq!(a.body["errors"][0]["field"], "value");
    }
    insta::assert_json_snapshot!("rating_out_of_range", rate(&env, &mine, json!({"value": 4})).await.body);
    let long = rate(&env, &mine, json!({"value": 5, "feedback": "x".repeat(4001)})).await;
    assert_eq!((long.status, long.body["errors"][0]["field"].as_str()), (422, Some("feedback")));
    // Not a number, or an unknown field: the body is wrong.
    assert_eq!(rate(&env, &mine, json!({"value": "happy"})).await.status, 400);
    assert_eq!(rate(&env, &mine, json!({"value": 5, "stars": 3})).await.status, 400);

    // Nobody answered: nobody to rate.
    let (_, bob_token) = env.operator("bob@example.com", "Bob").await;
    let lonely = env.channel("Nobody here", &[]).await;
    let waiting = chat(&env, &lonely, "Zoe").await;
    let a = rate(&env, &waiting, json!({"value": 5})).await;
    assert_eq!(a.status, 422, "{}", a.body);

    // Listing: operators see only theirs; bad filters are 422, unknown ones 400.
    assert_eq!(ratings(&env, &bob_token, &format!("?operator_id={ada}")).await.status, 403);
    assert_eq!(ratings(&env, &env.admin, "?value=4").await.status, 422);
    assert_eq!(ratings(&env, &env.admin, "?from=yesterday").await.status, 422);
    assert_eq!(ratings(&env, &env.admin, "?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z").await.status, 422);
    assert_eq!(ratings(&env, &env.admin, "?cursor=nonsense").await.status, 422);
    assert_eq!(ratings(&env, &env.admin, "?stars=5").await.status, 400);
    // Nothing was written by any refusal.
    let events = env.call(Method::GET, "/api/v1/events?event_type=ConversationRated", Some(&env.admin), None).await;
    assert_eq!(events.body["events"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_are_listed_with_filters_and_pages() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let shop = env.channel("Shop", &[ada]).await;
    let help = env.channel("Help", &[bob]).await;
    join(&env, &shop, &ada_token).await;
    join(&env, &help, &bob_token).await;

    let (a1, a2, b1) = (chat(&env, &shop, "V1").await, chat(&env, &shop, "V2").await, chat(&env, &help, "V3").await);
    rated(&env, &a1, 1, Some("bad")).await;
    let before_last = chrono::Utc::now();
    rated(&env, &a2, 5, None).await;
    let position = rated(&env, &b1, 3, None).await;
    let sessions = |a: &Answer| -> Vec<String> {
        a.body["ratings"].as_array().unwrap().iter().map(|r| r["session_id"].as_str().unwrap().to_string()).collect()
    };

    let all = ratings(&env, &env.admin, &format!("?min_position={position}")).await;
    assert_eq!(sessions(&all), vec![b1.id.clone(), a2.id.clone(), a1.id.clone()], "newest first");
    let by_channel = ratings(&env, &env.admin, &format!("?channel_id={shop}")).await;
    assert_eq!(sessions(&by_channel), vec![a2.id.clone(), a1.id.clone()]);
    let by_operator = ratings(&env, &env.admin, &format!("?operator_id={bob}")).await;
    assert_eq!(sessions(&by_operator), vec![b1.id.clone()]);
    let unhappy = ratings(&env, &env.admin, "?value=unhappy").await;
    assert_eq!(sessions(&unhappy), vec![a1.id.clone()]);
    let from = before_last.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let recent = ratings(&env, &env.admin, &format!("?from={from}&channel_id={shop}")).await;
    assert_eq!(sessions(&recent), vec![a2.id.clone()]);
    let older = ratings(&env, &env.admin, &format!("?to={from}")).await;
    assert_eq!(sessions(&older), vec![a1.id.clone()]);
    // Operators: their own only.
    assert_eq!(sessions(&ratings(&env, &ada_token, "").await), vec![a2.id.clone(), a1.id.clone()]);
    assert_eq!(sessions(&ratings(&env, &ada_token, &format!("?channel_id={help}")).await), Vec::<String>::new());

    // Pages of one: every rating once, then no cursor.
    let mut seen = Vec::new();
    let mut query = "?limit=1".to_string();
    loop {
        let page = ratings(&env, &env.admin, &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(sessions(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, sessions(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_is_notified_on_the_stream_even_after_the_chat_ended() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Support", &[ada, bob]).await;
    join(&env, &channel, &ada_token).await;
    let c = chat(&env, &channel, "Marie").await;
    // Bob joins once the chat is Ada's: an operator of the channel, not of the chat.
    join(&env, &channel, &bob_token).await;
    leave(&env, &c).await;

    // Both connect after the chat ended, live only.
    let ws = env.base.replace("http://", "ws://");
    let (mut ada_ws, _) =
        tokio_tungstenite::connect_async(format!("{ws}/api/v1/stream?access_token={ada_token}")).await.unwrap();
    let (mut bob_ws, _) =
        tokio_tungstenite::connect_async(format!("{ws}/api/v1/stream?access_token={bob_token}")).await.unwrap();
    assert_eq!(frame(&mut ada_ws).await["type"], "ready");
    assert_eq!(frame(&mut bob_ws).await["type"], "ready");

    rated(&env, &c, 1, Some("Too slow")).await;
    // Then something Bob does see: his own leaving.
    let left = env.call(Method::POST, &format!("/api/v1/channels/{channel}/leave"), Some(&bob_token), None).await;
    assert_eq!(left.status, 200);

    let rating = frame(&mut ada_ws).await;
    assert_eq!((&rating["type"], &rating["event_type"]), (&json!("event"), &json!("ConversationRated")), "{rating}");
    assert!(rating["stream_id"].as_str().unwrap().ends_with(&c.id));
    assert_eq!(
        (&rating["data"]["value"], &rating["data"]["feedback"], &rating["data"]["operator_id"]),
        (&json!(1), &json!("Too slow"), &json!(ada))
    );
    let mut bob_saw = Vec::new();
    loop {
        let f = frame(&mut bob_ws).await;
        bob_saw.push(f["event_type"].as_str().unwrap_or_default().to_string());
        if f["event_type"] == "OperatorLeft" && f["data"]["user_id"] == json!(bob) {
            break;
        }
    }
    assert_eq!(bob_saw, vec!["OperatorLeft"], "not another operator's rating");
}

/// The next text frame, as JSON.
async fn frame<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
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
