//! Races users never asked about: many clients writing to one conversation at once, many
//! visitors starting at once on one channel, through the real server on SQLite and on
//! PostgreSQL (there with two servers, as two nodes). Without `If-Match` nobody gets a 409;
//! with a stale one they still do.

use std::collections::HashMap;

use crate::common::Env;
use reqwest::Method;
use serde_json::{json, Value};
use store::{Store, StoreUrl};
use tokio::sync::watch;
use uuid::Uuid;

/// Another node on the same store: a server without projectors (the first node runs them).
struct Node {
    base: String,
    _stop: watch::Sender<bool>,
}

impl Node {
    async fn on(url: &StoreUrl) -> Node {
        let store = Store::open(url).await.unwrap();
        let state = api::AppState::new(store.events(), store.views(), api::ApiConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(api::serve(listener, state, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        Node { base, _stop: stop }
    }
}

/// One request to a server at `base`: status and body.
async fn send(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = http.request(method, format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn sqlite() -> (Env, Vec<String>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("livechat-contention-{}", Uuid::now_v7()));
    let url = StoreUrl::Sqlite(dir.join("livechat.db"));
    let store = Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let env = Env::start_on(store).await;
    let bases = vec![env.base.clone()];
    (env, bases, dir)
}

/// The first node (with projectors) and a second one on one fresh PostgreSQL database.
async fn postgres() -> Option<(Env, Node, Vec<String>)> {
    let url = StoreUrl::Postgres(store::testkit::pg::fresh_database().await?);
    let store = Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let env = Env::start_on(store).await;
    let other = Node::on(&url).await;
    let bases = vec![env.base.clone(), other.base.clone()];
    Some((env, other, bases))
}

async fn join(env: &Env, channel: &str, token: &str) {
    let a = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// A visitor with three tabs and their operator post at once, spread over the nodes:
/// every post is 201, none is 409, and the history has each message exactly once.
async fn concurrent_posts_all_land(env: &Env, bases: &[String]) {
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    join(env, &channel, &ada_token).await;
    let started =
        env.call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({}))).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();

    const CLIENTS: usize = 8;
    const POSTS: usize = 15;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let base = bases[client % bases.len()].clone();
            // Clients 0..6 are the visitor's tabs, 6 and 7 the operator's windows.
            let (path, token) = match client < 6 {
                true => (format!("/api/v1/public/sessions/{session}/messages"), visitor.clone()),
                false => (format!("/api/v1/conversations/{session}/messages"), ada_token.clone()),
            };
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut sent = Vec::new();
                for i in 0..POSTS {
                    let id = Uuid::now_v7();
                    let body = json!({"message_id": id, "text": format!("client {client} message {i}")});
                    let (status, answer) = send(&http, &base, Method::POST, &path, Some(&token), body).await;
                    assert_eq!(status, 201, "client {client} post {i}: {answer}");
                    sent.push(id);
                }
                sent
            })
        })
        .collect();
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }

    let path = format!("/api/v1/conversations/{session}/messages?limit=200");
    let history = env.call(Method::GET, &path, Some(&ada_token), None).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in history.body["messages"].as_array().unwrap() {
        *seen.entry(m["message_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for id in &sent {
        assert_eq!(seen.get(&id.to_string()), Some(&1), "message {id} exactly once");
    }
    assert_eq!(sent.len(), CLIENTS * POSTS);
}

/// 65 visitors start at once on one channel whose three operators take 10 conversations
/// each: every start is 201, 30 are assigned (10 each, never more) and 35 wait.
async fn concurrent_starts_all_succeed_within_capacity(env: &Env, bases: &[String]) {
    let mut operators = Vec::new();
    for name in ["Ada", "Bob", "Cyd"] {
        operators.push(env.operator(&format!("{}@example.com", name.to_lowercase()), name).await);
    }
    let ids: Vec<Uuid> = operators.iter().map(|(id, _)| *id).collect();
    let channel = env.channel("Support", &ids).await;
    let options = json!({"max_conversations_per_operator": 10});
    let set =
        env.call(Method::PUT, &format!("/api/v1/channels/{channel}/options"), Some(&env.admin), Some(options)).await;
    assert_eq!(set.status, 200, "{}", set.body);
    for (_, token) in &operators {
        join(env, &channel, token).await;
    }

    let tasks: Vec<_> = (0..65)
        .map(|i| {
            let base = bases[i % bases.len()].clone();
            let path = format!("/api/v1/public/channels/{channel}/sessions");
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                send(&http, &base, Method::POST, &path, None, json!({"name": format!("Visitor {i}")})).await
            })
        })
        .collect();
    let mut per_operator: HashMap<String, usize> = HashMap::new();
    let mut waiting = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        match body["status"].as_str() {
            Some("active") => {
                *per_operator.entry(body["operator"]["id"].as_str().unwrap().to_string()).or_default() += 1
            }
            Some("waiting") => waiting += 1,
            other => panic!("{other:?}: {body}"),
        }
    }
    for (id, _) in &operators {
        let held = env.state.users.get(env.state.events.as_ref(), *id).await.unwrap().open_conversations.len();
        assert_eq!(held, 10, "operator {id} holds exactly their limit");
        assert_eq!(per_operator.get(&id.to_string()), Some(&10), "{per_operator:?}");
    }
    assert_eq!(waiting, 35);
}

/// Two admins rename a channel at once from the same `ETag`: one wins, the other gets 409
/// `version-conflict` with the current version (a race they asked about).
async fn a_stale_if_match_is_still_a_conflict(env: &Env, bases: &[String]) {
    let channel = env.channel("Support", &[]).await;
    let path = format!("/api/v1/channels/{channel}");
    let form = env.call(Method::GET, &path, Some(&env.admin), None).await;
    let etag = form.headers.get("etag").unwrap().to_str().unwrap().to_string();
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let url = format!("{}{path}", bases[i % bases.len()]);
            let (admin, etag) = (env.admin.clone(), etag.clone());
            tokio::spawn(async move {
                let res = reqwest::Client::new()
                    .patch(url)
                    .bearer_auth(admin)
                    .header("If-Match", etag)
                    .json(&json!({"name": format!("Help {i}")}))
                    .send()
                    .await
                    .unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == 409 {
            assert_eq!(body["code"], "version-conflict", "{body}");
            assert!(body["current_version"].is_u64(), "{body}");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    // And later, with the same old ETag: still 409.
    let stale = env
        .call_with(Method::PATCH, &path, Some(&env.admin), Some(json!({"name": "Late"})), &[("If-Match", &etag)])
        .await;
    assert_eq!((stale.status, stale.body["code"].as_str()), (409, Some("version-conflict")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_concurrent_posts_on_one_conversation_all_land_without_409() {
    let (env, bases, dir) = sqlite().await;
    concurrent_posts_all_land(&env, &bases).await;
    env.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_65_concurrent_starts_all_succeed_and_no_operator_goes_over_capacity() {
    let (env, bases, dir) = sqlite().await;
    concurrent_starts_all_succeed_within_capacity(&env, &bases).await;
    env.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_stale_if_match_is_still_a_409() {
    let (env, bases, dir) = sqlite().await;
    a_stale_if_match_is_still_a_conflict(&env, &bases).await;
    env.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_concurrent_posts_through_two_servers_all_land_without_409() {
    let Some((env, _other, bases)) = postgres().await else { return };
    concurrent_posts_all_land(&env, &bases).await;
    env.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_65_concurrent_starts_through_two_servers_all_succeed_within_capacity() {
    let Some((env, _other, bases)) = postgres().await else { return };
    concurrent_starts_all_succeed_within_capacity(&env, &bases).await;
    env.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_stale_if_match_across_two_servers_is_still_a_409() {
    let Some((env, _other, bases)) = postgres().await else { return };
    a_stale_if_match_is_still_a_conflict(&env, &bases).await;
    env.stop();
}
