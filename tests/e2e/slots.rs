//! A crash between claiming an operator's slot and writing the conversation does not leak the
//! slot: on PostgreSQL, a trigger holds the conversation's first write while the server is
//! killed; after a restart the unconfirmed claim is released (reason `unconfirmed`) within
//! the claim timeout, and the operator gets conversations again.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_postgres::NoTls;

use crate::harness::*;

const MARKER: &str = "Crash Test Visitor";
/// Seconds an unconfirmed claim still counts (`LIVECHAT_CLAIM_TIMEOUT_SECONDS`).
const BOUND: u64 = 2;

async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect to the test database");
    tokio::spawn(connection);
    client
}

/// `serve` with a small claim timeout (through its environment variable).
fn serve(url: &str) -> Server {
    let mut cmd = livechat(url);
    cmd.env("LIVECHAT_CLAIM_TIMEOUT_SECONDS", BOUND.to_string());
    Server::spawn(cmd, &[])
}

async fn call(server: &Server, token: Option<&str>, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", server.base)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn post(server: &Server, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
    call(server, token, reqwest::Method::POST, path, body).await
}

async fn login(server: &Server, login: &str) -> String {
    let (status, body) =
        post(server, None, "/api/v1/auth/token", json!({"login": login, "password": ADMIN_PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The operator's stream, straight from the table: (event type, data).
async fn user_stream(db: &tokio_postgres::Client, user_id: &str) -> Vec<(String, Value)> {
    db.query(
        "SELECT event_type, data FROM events WHERE stream_id = $1 ORDER BY stream_version",
        &[&format!("user-{user_id}")],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn eventually<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_claim_and_the_conversation_frees_the_slot_after_the_bound() {
    let Some(url) = store::testkit::pg::fresh_database().await else { return };
    let mut server = serve(&url);
    server.login().await;
    let admin = server.token.clone().unwrap();
    let db = sql(&url).await;

    // An operator with one conversation at most, joined (so online).
    let ada = "ada@example.com";
    let (status, user) =
        post(&server, Some(&admin), "/api/v1/users", json!({"login": ada, "password": ADMIN_PASSWORD, "name": "Ada"}))
            .await;
    assert_eq!(status, 201, "{user}");
    let ada_id = user["user_id"].as_str().unwrap().to_string();
    let (status, channel) = post(&server, Some(&admin), "/api/v1/channels", json!({"name": "Help"})).await;
    assert_eq!(status, 201, "{channel}");
    let channel = channel["channel_id"].as_str().unwrap().to_string();
    let (status, body) =
        post(&server, Some(&admin), &format!("/api/v1/channels/{channel}/operators"), json!({"user_id": ada_id})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        Some(&admin),
        reqwest::Method::PUT,
        &format!("/api/v1/channels/{channel}/options"),
        json!({"max_conversations_per_operator": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ada_token = login(&server, ada).await;
    let (status, body) = post(&server, Some(&ada_token), &format!("/api/v1/channels/{channel}/join"), json!({})).await;
    assert_eq!(status, 200, "{body}");

    // The marked visitor's conversation write sleeps in the database; the claim is written.
    db.batch_execute(&format!(
        "CREATE FUNCTION slow_start() RETURNS trigger LANGUAGE plpgsql AS $$ \
           BEGIN PERFORM pg_sleep(120); RETURN NEW; END $$; \
         CREATE TRIGGER slow_start BEFORE INSERT ON events FOR EACH ROW \
           WHEN (NEW.event_type = 'SessionStarted' AND NEW.data->>'visitor_name' = '{MARKER}') \
           EXECUTE FUNCTION slow_start();"
    ))
    .await
    .unwrap();
    let start = format!("/api/v1/public/channels/{channel}/sessions");
    let base = server.base.clone();
    let in_flight = tokio::spawn({
        let start = start.clone();
        async move { reqwest::Client::new().post(format!("{base}{start}")).json(&json!({"name": MARKER})).send().await }
    });
    let ghost = eventually("the claim on the operator's stream", Duration::from_secs(20), async || {
        let events = user_stream(&db, &ada_id).await;
        events.iter().find(|(t, _)| t == "ConversationAssigned").map(|(_, d)| d["session_id"].clone())
    })
    .await;
    eventually("the conversation's write sleeping", Duration::from_secs(20), async || {
        let sleeping: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (sleeping > 0).then_some(())
    })
    .await;

    // The crash: the server dies, its write never commits.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = in_flight.await;
    db.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
           WHERE wait_event = 'PgSleep' AND datname = current_database() AND pid <> pg_backend_pid(); \
         DROP TRIGGER slow_start ON events; DROP FUNCTION slow_start();",
    )
    .await
    .unwrap();
    let started: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE stream_id = $1",
            &[&format!("session-{}", ghost.as_str().unwrap())],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(started, 0, "the conversation was never written");

    // Restarted: the sweeper releases the unconfirmed claim within the bound and a few seconds.
    let mut server = serve(&url);
    server.login().await;
    let released = eventually("the release of the unconfirmed claim", Duration::from_secs(BOUND + 8), async || {
        let events = user_stream(&db, &ada_id).await;
        events.into_iter().find(|(t, d)| t == "ConversationReleased" && d["session_id"] == ghost).map(|(_, d)| d)
    })
    .await;
    assert_eq!(released, json!({"session_id": ghost, "reason": "unconfirmed"}));

    // A new visitor is routed to the operator.
    let (status, routed) = post(&server, None, &start, json!({"name": "Grace"})).await;
    assert_eq!(status, 201, "{routed}");
    assert_eq!(routed["status"], "active", "{routed}");
    assert_eq!(routed["operator"]["id"], ada_id.as_str(), "{routed}");

    // Once that one is closed, the operator takes a queued conversation herself.
    let ada_token = login(&server, ada).await;
    let routed_id = routed["session_id"].as_str().unwrap();
    let (status, body) =
        post(&server, Some(&ada_token), &format!("/api/v1/conversations/{routed_id}/close"), json!({})).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = post(&server, Some(&ada_token), &format!("/api/v1/channels/{channel}/leave"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, queued) = post(&server, None, &start, json!({"name": "Linus"})).await;
    assert_eq!(status, 201, "{queued}");
    assert_eq!(queued["status"], "waiting", "{queued}");
    let queued_id = queued["session_id"].as_str().unwrap();
    let (status, taken) =
        post(&server, Some(&ada_token), &format!("/api/v1/conversations/{queued_id}/take"), json!({})).await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["operator_id"], ada_id.as_str());
    assert_eq!(server.terminate().0, Some(0));
}

/// The bound is a documented `serve` setting.
#[test]
fn the_claim_timeout_is_a_serve_flag_with_an_environment_variable() {
    let mut cmd = livechat("memory:");
    cmd.args(["serve", "--help"]);
    let out = run(cmd, "");
    let help = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(help.contains("--claim-timeout-seconds"), "{help}");
    assert!(help.contains("LIVECHAT_CLAIM_TIMEOUT_SECONDS"), "{help}");
    assert!(help.contains("[default: 15]"), "{help}");
}
