//! Determinism: views rebuilt from position zero equal the live ones, document by document,
//! after a scripted history, on SQLite and on PostgreSQL.

use std::time::Duration;

use crate::common::{self, Env};
use reqwest::Method;
use serde_json::{json, Value};
use store::{Store, StoreUrl};

/// A bit of everything through the API: channels edited, operators joining, conversations
/// with messages, seen marks, page views, a transfer, closes, a rating, canned responses.
async fn scripted_history(env: &Env) {
    let ok = |a: &common::Answer| assert!((200..300).contains(&a.status), "{}", a.body);
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Support", &[ada, bob]).await;
    let path = format!("/api/v1/channels/{channel}");
    ok(&env.call(Method::PATCH, &path, Some(&env.admin), Some(json!({"name": "Help"}))).await);
    ok(&env
        .call(Method::PUT, &format!("{path}/options"), Some(&env.admin), Some(json!({"ratings_public": true})))
        .await);
    ok(&env.call(Method::POST, &format!("{path}/rules"), Some(&env.admin), Some(json!({"url_regex": "/shop"}))).await);
    ok(&env.call(Method::POST, &format!("{path}/join"), Some(&ada_token), None).await);
    let canned = json!({"shortcut": "hello", "text": "Hello! How can I help you today?"});
    ok(&env.call(Method::POST, "/api/v1/canned-responses", Some(&ada_token), Some(canned)).await);
    for i in 0..3 {
        let started = env
            .call(
                Method::POST,
                &format!("/api/v1/public/channels/{channel}/sessions"),
                None,
                Some(json!({"name": format!("V{i}")})),
            )
            .await;
        ok(&started);
        let id = started.body["session_id"].as_str().unwrap().to_string();
        let visitor = started.body["visitor_token"].as_str().unwrap().to_string();
        let said = env
            .call(
                Method::POST,
                &format!("/api/v1/public/sessions/{id}/messages"),
                Some(&visitor),
                Some(json!({"text": "hi"})),
            )
            .await;
        ok(&said);
        let up_to = said.body["message_id"].clone();
        ok(&env
            .call(
                Method::POST,
                &format!("/api/v1/public/sessions/{id}/pages"),
                Some(&visitor),
                Some(json!({"url": "/shop/1"})),
            )
            .await);
        let operator = if i == 1 { &bob_token } else { &ada_token };
        if i == 1 {
            ok(&env.call(Method::POST, &format!("{path}/join"), Some(&bob_token), None).await);
            let to = json!({"operator_id": bob});
            ok(&env
                .call(Method::POST, &format!("/api/v1/conversations/{id}/transfer"), Some(&ada_token), Some(to))
                .await);
        }
        ok(&env
            .call(
                Method::POST,
                &format!("/api/v1/conversations/{id}/seen"),
                Some(operator),
                Some(json!({"up_to": up_to})),
            )
            .await);
        ok(&env
            .call(
                Method::POST,
                &format!("/api/v1/conversations/{id}/messages"),
                Some(operator),
                Some(json!({"text": ":hello"})),
            )
            .await);
        if i < 2 {
            ok(&env.call(Method::POST, &format!("/api/v1/public/sessions/{id}/leave"), Some(&visitor), None).await);
            let rating = json!({"value": if i == 0 { 5 } else { 1 }, "feedback": "thanks"});
            ok(&env
                .call(Method::POST, &format!("/api/v1/public/sessions/{id}/rating"), Some(&visitor), Some(rating))
                .await);
        }
    }
}

/// Every document of every view, without the per-document write counter (a rebuild writes
/// each document fewer times than the live run did).
async fn documents(store: &Store) -> Vec<(String, String, String, String, Value)> {
    let mut out = Vec::new();
    for p in projections::all() {
        for view in p.views() {
            for d in store::views::list_all(store.views().as_ref(), view, None).await.unwrap() {
                out.push((view.to_string(), d.id, d.partition, d.sort_key, d.body));
            }
        }
    }
    out
}

async fn rebuilt_views_equal_live_ones(url: StoreUrl) {
    let store = Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let env = Env::start_on(store.clone()).await;
    scripted_history(&env).await;
    let head = store.events().head().await.unwrap().expect("events were written");
    for p in projections::all() {
        let caught_up =
            projections::wait_for(store.views().as_ref(), p.name(), head, Duration::from_secs(20)).await.unwrap();
        assert!(caught_up, "{} did not reach {head}", p.name());
    }
    let live = documents(&store).await;
    assert!(live.len() > 30, "the history fills the views: {}", live.len());

    // Stop the live runners, then rebuild every projector from position zero, as
    // `livechat projections rebuild --all` does (into shadow documents, then swapped in).
    env.stop();
    for p in projections::all() {
        let mut owned = None;
        for _ in 0..200 {
            owned = store.views().try_own(p.name()).await.unwrap();
            if owned.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ownership = owned.unwrap_or_else(|| panic!("{} is still owned", p.name()));
        projections::rebuild(p.as_ref(), store.events().as_ref(), store.views().as_ref(), &Default::default(), |_| {})
            .await
            .unwrap();
    }

    let rebuilt = documents(&store).await;
    for (view, id, partition, sort_key, body) in &live {
        let found = rebuilt.iter().find(|d| &d.0 == view && &d.1 == id);
        assert_eq!(
            found,
            Some(&(view.clone(), id.clone(), partition.clone(), sort_key.clone(), body.clone())),
            "{view}/{id}"
        );
    }
    assert_eq!(live.len(), rebuilt.len(), "no document more, none fewer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_rebuilt_views_equal_the_live_ones() {
    let dir = std::env::temp_dir().join(format!("livechat-replay-{}", uuid::Uuid::now_v7()));
    rebuilt_views_equal_live_ones(StoreUrl::Sqlite(dir.join("livechat.db"))).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_rebuilt_views_equal_the_live_ones() {
    let Some(url) = store::testkit::pg::fresh_database().await else { return };
    rebuilt_views_equal_live_ones(StoreUrl::Postgres(url)).await;
}
