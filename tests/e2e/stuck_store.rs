//! A database that stops answering (every PostgreSQL process SIGSTOPped, as a hung host):
//! requests answer within their bounds with honest 503 problem documents, never hang or
//! 408, and the same posts retried after the database is back land exactly once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use store::testkit::pg::PrivateCluster;
use uuid::Uuid;

use crate::harness::*;

/// The bounds the server runs with (as environment variables, which an older binary
/// ignores: it then shows what this test guards against).
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
const FROZEN_FOR: Duration = Duration::from_secs(8);

/// One post's answer.
struct Answer {
    message_id: Uuid,
    status: u16,
    took: Duration,
    content_type: String,
    retry_after: Option<String>,
    body: Value,
}

async fn post(http: &reqwest::Client, url: &str, token: &str, message_id: Uuid) -> Answer {
    let started = Instant::now();
    let body = json!({ "message_id": message_id, "text": format!("message {message_id}") });
    let res = http.post(url).bearer_auth(token).json(&body).send().await.expect("the server answers");
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (content_type, retry_after) = (header("content-type").unwrap_or_default(), header("retry-after"));
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    Answer { message_id, status, took: started.elapsed(), content_type, retry_after, body }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gives_bounded_honest_503s_and_retries_land_once() {
    let Some(cluster) = tokio::task::spawn_blocking(PrivateCluster::start).await.unwrap() else { return };
    let mut cmd = livechat(&cluster.url);
    cmd.env("LIVECHAT_STORE_TIMEOUT", format!("{}s", STORE_TIMEOUT.as_secs()))
        .env("LIVECHAT_STORE_CONNECT_TIMEOUT", "1s")
        .env("LIVECHAT_STORE_POOL_WAIT_TIMEOUT", "1s")
        .env("LIVECHAT_REQUEST_TIMEOUT", format!("{}s", REQUEST_TIMEOUT.as_secs()));
    let mut server = Server::spawn(cmd, &[]);
    server.login().await;
    let mut channel = None;
    for _ in 0..100 {
        let (_, listed) = server.get("/api/v1/channels").await;
        channel = listed["channels"][0]["channel_id"].as_str().map(str::to_string);
        if channel.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let channel = channel.expect("the default channel is listed");
    // No client waits for ever, even on a server that would hang.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(45)).build().unwrap();
    let started = http
        .post(format!("{}/api/v1/public/channels/{channel}/sessions", server.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 201);
    let started: Value = started.json().await.unwrap();
    let session = started["session_id"].as_str().unwrap().to_string();
    let visitor = started["visitor_token"].as_str().unwrap().to_string();
    let messages = format!("{}/api/v1/public/sessions/{session}/messages", server.base);
    for _ in 0..3 {
        assert_eq!(post(&http, &messages, &visitor, Uuid::now_v7()).await.status, 201, "before the stop");
    }

    // Posts keep arriving, four a second, while the database stops and comes back.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let poster = {
        let (http, messages, visitor) = (http.clone(), messages.clone(), visitor.clone());
        tokio::spawn(async move {
            let until = Instant::now() + FROZEN_FOR + Duration::from_secs(1);
            while Instant::now() < until {
                let (http, messages, visitor, tx) = (http.clone(), messages.clone(), visitor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _ = tx.send(post(&http, &messages, &visitor, Uuid::now_v7()).await);
                });
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen_at = Instant::now();
    cluster.freeze();

    // Readiness goes 503 within the store's bound, while frozen.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    let ready = http.get(format!("{}/readyz", server.base)).send().await.unwrap();
    let ready_took = asked.elapsed();
    assert_eq!(ready.status().as_u16(), 503, "{:?}", ready.text().await);
    assert!(ready_took <= STORE_TIMEOUT + Duration::from_secs(1), "/readyz took {ready_took:?}");

    let left = FROZEN_FOR.saturating_sub(frozen_at.elapsed());
    tokio::time::sleep(left).await;
    cluster.thaw();
    poster.await.unwrap();
    let mut answers = Vec::new();
    while let Some(a) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("every post answers") {
        answers.push(a);
    }

    let bound = REQUEST_TIMEOUT + Duration::from_secs(1);
    let mut refused = Vec::new();
    let mut acknowledged = Vec::new();
    for a in &answers {
        assert!(a.took <= bound, "a post took {:?} (status {}), more than {bound:?}", a.took, a.status);
        assert_ne!(a.status, 408, "never 408");
        if a.status == 201 {
            acknowledged.push(a.message_id);
            continue;
        }
        assert_eq!(a.status, 503, "{}", a.body);
        assert_eq!(a.content_type, "application/problem+json", "{}", a.body);
        assert!(
            matches!(a.body["code"].as_str(), Some("store-timeout" | "store-unavailable" | "deadline-exceeded")),
            "{}",
            a.body
        );
        assert!(matches!(a.body["outcome"].as_str(), Some("unknown" | "not-applied")), "{}", a.body);
        assert_eq!(a.body["retry_safe"], true, "{}", a.body);
        assert!(a.retry_after.is_some(), "Retry-After on {}", a.body);
        refused.push(a.message_id);
    }
    assert!(refused.len() >= 10, "posts while stopped are refused: {} of {}", refused.len(), answers.len());
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    let codes: std::collections::BTreeMap<String, usize> = answers.iter().fold(Default::default(), |mut m, a| {
        let code =
            a.body["code"].as_str().map(|c| format!("{c}/{}", a.body["outcome"])).unwrap_or(a.status.to_string());
        *m.entry(code).or_default() += 1;
        m
    });
    eprintln!("{} posts, slowest answer {slowest:?}, /readyz 503 in {ready_took:?}: {codes:?}", answers.len());

    // Back: the same posts, with the same message ids, land (once the pool has reconnected).
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &refused {
        loop {
            let a = post(&http, &messages, &visitor, *id).await;
            if a.status == 201 {
                break;
            }
            assert!(Instant::now() < deadline, "retry of {id} still {}: {}", a.status, a.body);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let history = http.get(format!("{messages}?limit=200")).bearer_auth(&visitor).send().await.unwrap();
    assert_eq!(history.status().as_u16(), 200);
    let history: Value = history.json().await.unwrap();
    let ids: Vec<&str> =
        history["messages"].as_array().unwrap().iter().filter_map(|m| m["message_id"].as_str()).collect();
    for id in refused.iter().chain(&acknowledged) {
        let id = id.to_string();
        assert_eq!(ids.iter().filter(|m| **m == id).count(), 1, "message {id} exactly once in {ids:?}");
    }
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, 200, "ready again");
    assert_eq!(server.terminate().0, Some(0));
}

#[test]
fn an_invalid_timeout_is_a_one_line_error_with_exit_code_2() {
    for (args, says) in [
        (vec!["--store-timeout", "soon"], "--store-timeout: invalid duration 'soon'"),
        (vec!["--request-timeout", "0"], "--request-timeout: invalid duration '0'"),
        (vec!["--store-timeout", "20s", "--request-timeout", "10s"], "must be longer than --store-timeout"),
    ] {
        let mut cmd = livechat("memory:");
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(&args);
        let out = run(cmd, "");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("livechat: ") && err.contains(says), "{args:?}: {err}");
    }
    let mut env = livechat("memory:");
    env.env("LIVECHAT_STORE_POOL_WAIT_TIMEOUT", "3 fortnights").args(["serve", "--listen", "127.0.0.1:0"]);
    let out = run(env, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--store-pool-wait-timeout: invalid duration '3 fortnights'"), "{}", stderr(&out));
}
