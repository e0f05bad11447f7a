//! Read-your-writes: every request that writes answers with `X-Livechat-Position`, and a read
//! with that `min_position` sees the write.

use crate::common::{Answer, Env};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

/// The position a write answered with; a write without one fails the test.
fn written(a: &Answer, what: &str) -> String {
    assert!(a.status < 300, "{what}: {} {}", a.status, a.body);
    a.headers
        .get("x-livechat-position")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{what} answered {} without X-Livechat-Position", a.status))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_answers_with_its_position_and_reads_at_it_see_it() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    let join = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await;
    written(&join, "join");
    for status in ["away", "online"] {
        let set = env.call(Method::PUT, "/api/v1/me/status", Some(&ada_token), Some(json!({"status": status}))).await;
        written(&set, "status");
    }

    let start = env
        .call(
            Method::POST,
            &format!("/api/v1/public/channels/{channel}/sessions"),
            None,
            Some(json!({"name": "Marie"})),
        )
        .await;
    written(&start, "visitor start");
    let session = start.body["session_id"].as_str().unwrap().to_string();
    let visitor = start.body["visitor_token"].as_str().unwrap().to_string();
    let vpath = |rest: &str| format!("/api/v1/public/sessions/{session}{rest}");
    let opath = |rest: &str| format!("/api/v1/conversations/{session}{rest}");

    let mut last = Uuid::nil();
    for i in 0..3 {
        last = Uuid::now_v7();
        let post = env
            .call(
                Method::POST,
                &vpath("/messages"),
                Some(&visitor),
                Some(json!({"message_id": last, "text": format!("question {i}")})),
            )
            .await;
        written(&post, "visitor post");
    }
    let page = env.call(Method::POST, &vpath("/pages"), Some(&visitor), Some(json!({"url": "/cart"}))).await;
    written(&page, "page visit");

    // The operator reads: the seen mark's position is where the inbox shows nothing unread.
    let inbox = |position: String| {
        let (env, token) = (&env, &ada_token);
        async move {
            let a = env
                .call(Method::GET, &format!("/api/v1/conversations?min_position={position}"), Some(token), None)
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
            a.body["conversations"][0]["unread_for_operator"].as_u64()
        }
    };
    assert_eq!(inbox(written(&page, "page visit")).await, Some(3));
    let seen = env.call(Method::POST, &opath("/seen"), Some(&ada_token), Some(json!({"up_to": last}))).await;
    assert_eq!(inbox(written(&seen, "operator seen")).await, Some(0), "read right after the seen mark");
    let answer = Uuid::now_v7();
    let reply = env
        .call(Method::POST, &opath("/messages"), Some(&ada_token), Some(json!({"message_id": answer, "text": "Hello"})))
        .await;
    written(&reply, "operator post");
    let vseen = env.call(Method::POST, &vpath("/seen"), Some(&visitor), Some(json!({"up_to": answer}))).await;
    written(&vseen, "visitor seen");
    let close = env.call(Method::POST, &opath("/close"), Some(&ada_token), None).await;
    written(&close, "close");
    let rate = env.call(Method::POST, &vpath("/rating"), Some(&visitor), Some(json!({"value": 5}))).await;
    written(&rate, "rating");

    let leave = env.call(Method::POST, &format!("/api/v1/channels/{channel}/leave"), Some(&ada_token), None).await;
    written(&leave, "leave");
    let profile = env.call(Method::PATCH, "/api/v1/me", Some(&ada_token), Some(json!({"chat_name": "Ada L."}))).await;
    written(&profile, "profile");
}
