//! `/readyz` says 503 only for what this service can act on (the store unreadable, a projector
//! behind or stuck), with the reason; on PostgreSQL, transactions that do not append hold back
//! neither readiness nor delivery (issue 14). The PostgreSQL tests are skipped without a
//! server, as `store::testkit::pg` says.

use std::time::{Duration, Instant};

use crate::common::Env;
use api::{router, ApiConfig, AppState};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use futures_util::StreamExt;
use projections::{Runner, RunnerConfig};
use reqwest::Method;
use serde_json::{json, Value};
use store::{Commit, ExpectedVersion, NewEvent, Position, Store, StoreUrl};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;
use uuid::Uuid;

/// The most a delivery may take while unrelated transactions run.
const PROMPT: Duration = Duration::from_millis(200);

async fn readyz(state: &AppState) -> (StatusCode, Value) {
    let res = router(state.clone()).oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("raw connection");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Another client of the cluster: a writing transaction on a table of its own, kept running
/// (`pg_sleep(10)`) until [`Busy::stop`], as a slow batch job would.
struct Busy {
    pid: i32,
    admin: tokio_postgres::Client,
}

impl Busy {
    async fn start(url: &str) -> Busy {
        let client = raw(url).await;
        client.batch_execute("CREATE TABLE IF NOT EXISTS batch_job (x int)").await.unwrap();
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        tokio::spawn(async move {
            // Cancelled by `stop`: the error is expected.
            let _ = client.batch_execute("BEGIN; INSERT INTO batch_job VALUES (1); SELECT pg_sleep(10); COMMIT").await;
        });
        let busy = Busy { pid, admin: raw(url).await };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !busy.running().await {
            assert!(Instant::now() < deadline, "the busy transaction never got a transaction id");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        busy
    }

    /// It is still in its transaction, holding a transaction id.
    async fn running(&self) -> bool {
        let q = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND backend_xid IS NOT NULL";
        self.admin.query_one(q, &[&self.pid]).await.unwrap().get::<_, i64>(0) == 1
    }

    async fn stop(self) {
        self.admin.execute("SELECT pg_cancel_backend($1)", &[&self.pid]).await.unwrap();
    }
}

async fn postgres() -> Option<(String, Store)> {
    let url = store::testkit::pg::fresh_database().await?;
    let store = Store::open(&StoreUrl::Postgres(url.clone())).await.unwrap();
    store.migrate().await.unwrap();
    Some((url, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_ready_while_unrelated_transactions_run_and_reports_a_held_append() {
    let Some((url, store)) = postgres().await else { return };
    let Some(other_url) = store::testkit::pg::fresh_database().await else { return };
    let bound = Duration::from_secs(1);
    let state = AppState::new(store.events(), store.views(), ApiConfig { ready_max_lag: bound, ..Default::default() });
    let (_stop, stopped) = watch::channel(false);
    let fast =
        RunnerConfig { poll: Duration::from_millis(10), heartbeat: Duration::from_millis(200), ..Default::default() };
    for p in projections::all() {
        tokio::spawn(Runner::new(p, store.events(), store.views(), fast.clone()).run(stopped.clone()));
    }
    let first = store.events().append("thing-1", ExpectedVersion::Any, vec![NewEvent::new("Made", json!({}))]).await;
    let head = first.unwrap().position;
    let views = store.views();
    for p in projections::all() {
        let caught_up = projections::wait_for(views.as_ref(), p.name(), head, Duration::from_secs(10)).await;
        assert!(caught_up.unwrap(), "{} caught up", p.name());
    }
    assert_eq!(readyz(&state).await.0, StatusCode::OK);

    // Other clients write for longer than the bound, in another database and in this one.
    let elsewhere = Busy::start(&other_url).await;
    let here = Busy::start(&url).await;
    tokio::time::sleep(bound + Duration::from_millis(500)).await;
    let (status, body) = readyz(&state).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")), "{body}");
    assert!(body.get("reason").is_none(), "{body}");
    let age = body["store"]["horizon_age_seconds"].as_f64().expect("the horizon's age is reported");
    assert!(age < 0.5, "unrelated transactions hold no append back: {body}");
    // Events appended meanwhile are applied at once.
    let next = store.events().append("thing-2", ExpectedVersion::Any, vec![NewEvent::new("Made", json!({}))]).await;
    let next = next.unwrap().position;
    let applied = projections::wait_for(views.as_ref(), "stream_index", next, PROMPT).await.unwrap();
    assert!(applied, "an event waited for unrelated transactions");
    assert!(elsewhere.running().await && here.running().await, "they ran the whole time");

    // An append held open holds the horizon back: reported, yet not unready by itself (what it
    // holds back is visible to nobody, so no projector is behind).
    let mut client = raw(&url).await;
    let held = client.transaction().await.unwrap();
    let empty = json!({});
    held.query_one(
        store::postgres::APPEND,
        &[
            &"held-1",
            &0i32,
            &None::<i64>,
            &vec![Uuid::now_v7()],
            &vec!["Held"],
            &vec![1i32],
            &vec![&empty],
            &vec![&empty],
            &vec![Utc::now()],
        ],
    )
    .await
    .unwrap();
    store.events().append("thing-3", ExpectedVersion::Any, vec![NewEvent::new("Made", json!({}))]).await.unwrap();
    tokio::time::sleep(bound + Duration::from_millis(500)).await;
    let (status, body) = readyz(&state).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")), "{body}");
    assert!(body["store"]["horizon_age_seconds"].as_f64().unwrap() >= 1.0, "{body}");
    assert!(body["projectors"].as_array().unwrap().iter().all(|p| p["lag_events"] == 0), "{body}");
    held.commit().await.unwrap();
    elsewhere.stop().await;
    here.stop().await;
}

/// End to end: a visitor's message posted over HTTP reaches the operator's WebSocket while
/// another database of the cluster runs a long writing transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_message_reaches_the_operator_promptly_while_another_database_is_busy() {
    let Some((_, store)) = postgres().await else { return };
    let Some(other_url) = store::testkit::pg::fresh_database().await else { return };
    let env = Env::start_on(store).await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    let joined = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let started = env
        .call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({"url": "/shop"})))
        .await;
    assert_eq!(started.status, 201, "{}", started.body);
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();

    let mut request = format!("{}/api/v1/stream", env.base.replacen("http", "ws", 1)).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {ada_token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("the stream opens");

    let busy = Busy::start(&other_url).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut delays = Vec::new();
    for n in 0..3 {
        let text = format!("Where is my order? ({n})");
        let path = format!("/api/v1/public/sessions/{session}/messages");
        let posted = env.call(Method::POST, &path, Some(&visitor), Some(json!({"text": text}))).await;
        assert_eq!(posted.status, 201, "{}", posted.body);
        let answered = Instant::now();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(15), ws.next())
                .await
                .expect("the message reached the operator's stream")
                .expect("the stream is open")
                .expect("a readable frame");
            let Message::Text(frame) = message else { continue };
            let frame: Value = serde_json::from_str(frame.as_str()).unwrap();
            if frame["type"] == "event" && frame["data"]["text"] == text.as_str() {
                break;
            }
        }
        delays.push(answered.elapsed());
    }
    eprintln!("visitor message to operator stream, another database busy: {delays:?}");
    assert!(delays.iter().all(|d| *d < PROMPT), "deliveries took {delays:?}");
    assert!(busy.running().await, "the other database's transaction ran the whole time");
    busy.stop().await;
}

/// A projector that has work or keeps failing and has shown no sign of life for longer than
/// the bound is stuck; one whose visible events wait longer than the bound is behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_stuck_or_behind_makes_readyz_503_with_the_reason() {
    let store = Store::open(&StoreUrl::Memory).await.unwrap();
    let state = AppState::new(store.events(), store.views(), ApiConfig::default());
    let (status, body) = readyz(&state).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")), "{body}");

    // Its runner last committed 5 minutes ago, then failed: stuck.
    let p = projections::all().into_iter().next().unwrap();
    let long_ago = Utc::now() - chrono::Duration::minutes(5);
    let commit = Commit {
        projector: p.name().into(),
        projector_version: p.version(),
        expected: None,
        checkpoint: Position::START,
        last_event_at: None,
        changes: vec![],
        parked: vec![],
        now: long_ago,
    };
    store.views().commit(commit).await.unwrap();
    let (status, body) = readyz(&state).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")), "idle, not stuck: {body}");
    store.views().record_error(p.name(), "disk full", Utc::now()).await.unwrap();
    let (status, body) = readyz(&state).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("stuck")), "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("projector {} has shown no sign of life for 300 s", p.name())), "{reason}");
    assert!(reason.contains("failing: disk full"), "{reason}");

    // A heartbeat: alive again.
    store.views().heartbeat(p.name(), Utc::now()).await.unwrap();
    let (status, body) = readyz(&state).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An event that has waited 5 minutes: every projector is behind, none is stuck.
    let mut old = NewEvent::new("Old", json!({}));
    old.recorded_at = Some(long_ago);
    store.events().append("old-1", ExpectedVersion::Any, vec![old]).await.unwrap();
    let (status, body) = readyz(&state).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("lagging")), "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("projector {} is 300.0 s behind (1 events, bound 30 s)", p.name())), "{reason}");
    assert!(!reason.contains("no sign of life"), "{reason}");
}
