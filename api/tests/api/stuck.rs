//! A store that stops answering: requests answer 503 problem documents that say what became
//! of them, within their bounds, never 408; a retried post lands once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{router, ApiConfig, AppState};
use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use store::{
    AppendResult, Backend, Bounded, Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadAll, RecordedEvent,
    Store, StoreError, StoreUrl, Timeouts,
};
use tokio::sync::watch;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
/// Long enough for a login (argon2) in a debug build.
const DEADLINE: Duration = Duration::from_secs(4);

/// Forwards to a real store; while `stuck`, appends (or every call) never answer.
struct Gate {
    inner: Arc<dyn EventStore>,
    appends: AtomicBool,
    reads: AtomicBool,
}

impl Gate {
    async fn wait(&self, stuck: &AtomicBool) {
        if stuck.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl EventStore for Gate {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    async fn append(&self, s: &str, e: ExpectedVersion, ev: Vec<NewEvent>) -> Result<AppendResult, StoreError> {
        self.wait(&self.appends).await;
        self.inner.append(s, e, ev).await
    }
    async fn read_stream(&self, s: &str, f: u64, d: Direction, l: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.wait(&self.reads).await;
        self.inner.read_stream(s, f, d, l).await
    }
    async fn read_all(&self, q: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(q).await
    }
    async fn stream_version(&self, s: &str) -> Result<Option<u64>, StoreError> {
        self.wait(&self.reads).await;
        self.inner.stream_version(s).await
    }
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.head().await
    }
    async fn count_after(&self, a: Position, c: u64) -> Result<u64, StoreError> {
        self.inner.count_after(a, c).await
    }
    fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits()
    }
}

struct App {
    router: axum::Router,
    gate: Arc<Gate>,
    _stop: watch::Sender<bool>,
}

/// The API over a memory store behind a gate; `bounded`: the store calls have a 200 ms bound
/// (as `serve` sets them up), otherwise only the request deadline bounds them.
async fn app(bounded: bool) -> App {
    let store = Store::open(&StoreUrl::Memory).await.unwrap();
    let gate = Arc::new(Gate { inner: store.events(), appends: false.into(), reads: false.into() });
    let timeouts = Timeouts { call: Duration::from_millis(200), ..Timeouts::default() };
    let events = if bounded { Bounded::events(gate.clone(), timeouts) } else { gate.clone() as Arc<dyn EventStore> };
    let config = ApiConfig { request_timeout: DEADLINE, ..ApiConfig::default() };
    let state = AppState::new(events, store.views(), config);
    api::bootstrap::bootstrap(&state, "admin@example.com", Some(PASSWORD.into())).await.unwrap().unwrap();
    let (stop, stopped) = watch::channel(false);
    let fast = projections::RunnerConfig { poll: Duration::from_millis(10), ..Default::default() };
    for p in projections::all() {
        tokio::spawn(projections::Runner::new(p, store.events(), store.views(), fast.clone()).run(stopped.clone()));
    }
    App { router: router(state), gate, _stop: stop }
}

struct Answer {
    status: u16,
    took: Duration,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl App {
    async fn call(&self, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
        let started = Instant::now();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        Answer { status, took: started.elapsed(), headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// A visitor's conversation on the default channel: (messages path, visitor token).
    async fn conversation(&self) -> (String, String) {
        let login = json!({"login": "admin@example.com", "password": PASSWORD});
        let admin = self.call("POST", "/api/v1/auth/token", None, Some(login)).await;
        let admin = admin.body["access_token"].as_str().unwrap_or_else(|| panic!("{}", admin.body)).to_string();
        let mut channel = None;
        for _ in 0..200 {
            let listed = self.call("GET", "/api/v1/channels", Some(&admin), None).await;
            channel = listed.body["channels"][0]["channel_id"].as_str().map(str::to_string);
            if channel.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let channel = channel.expect("the default channel");
        let start = format!("/api/v1/public/channels/{channel}/sessions");
        let started = self.call("POST", &start, None, Some(json!({}))).await;
        assert_eq!(started.status, 201, "{}", started.body);
        let session = started.body["session_id"].as_str().unwrap();
        (format!("/api/v1/public/sessions/{session}/messages"), started.body["visitor_token"].as_str().unwrap().into())
    }
}

fn problem_of(a: &Answer) -> Value {
    let header = |n: &str| a.headers.get(n).map(|v| v.to_str().unwrap().to_string());
    json!({
        "status": a.status,
        "content_type": header("content-type"),
        "retry_after": header("retry-after"),
        "body": a.body,
    })
}

#[tokio::test]
async fn an_append_that_times_out_is_a_503_with_an_unknown_outcome_and_its_retry_lands_once() {
    let app = app(true).await;
    let (messages, visitor) = app.conversation().await;
    let post = json!({"message_id": "0190a000-0000-7000-8000-00000000abcd", "text": "hello?"});
    app.gate.appends.store(true, Ordering::SeqCst);
    let stuck = app.call("POST", &messages, Some(&visitor), Some(post.clone())).await;
    assert!(stuck.took < Duration::from_secs(1), "answered by the store's bound first: {:?}", stuck.took);
    insta::assert_json_snapshot!("append_timed_out", problem_of(&stuck));

    // A read that times out wrote nothing.
    app.gate.reads.store(true, Ordering::SeqCst);
    let read = app.call("GET", &messages, Some(&visitor), None).await;
    assert_eq!((read.status, read.body["code"].as_str()), (503, Some("store-timeout")), "{}", read.body);
    assert_eq!(read.body["outcome"], "not-applied");

    app.gate.appends.store(false, Ordering::SeqCst);
    app.gate.reads.store(false, Ordering::SeqCst);
    let again = app.call("POST", &messages, Some(&visitor), Some(post.clone())).await;
    assert_eq!(again.status, 201, "{}", again.body);
    let twice = app.call("POST", &messages, Some(&visitor), Some(post)).await;
    assert_eq!((twice.status, &twice.body), (201, &again.body), "the same answer for the same message id");
    let history = app.call("GET", &messages, Some(&visitor), None).await;
    let ids: Vec<&Value> = history.body["messages"].as_array().unwrap().iter().map(|m| &m["message_id"]).collect();
    assert_eq!(ids.iter().filter(|id| **id == "0190a000-0000-7000-8000-00000000abcd").count(), 1, "{ids:?}");
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_503_problem_never_a_408() {
    let app = app(false).await;
    let (messages, visitor) = app.conversation().await;
    app.gate.appends.store(true, Ordering::SeqCst);
    let post = json!({"message_id": "0190a000-0000-7000-8000-00000000beef", "text": "anyone?"});
    let write = app.call("POST", &messages, Some(&visitor), Some(post)).await;
    assert!(write.took >= DEADLINE && write.took < DEADLINE + Duration::from_secs(1), "{:?}", write.took);
    insta::assert_json_snapshot!("write_past_deadline", problem_of(&write));

    app.gate.reads.store(true, Ordering::SeqCst);
    let read = app.call("GET", &messages, Some(&visitor), None).await;
    assert_eq!((read.status, read.body["code"].as_str()), (503, Some("deadline-exceeded")), "{}", read.body);
    assert_eq!(read.body["outcome"], "not-applied", "a read wrote nothing");
    // Health does not wait on the store.
    assert_eq!(app.call("GET", "/healthz", None, None).await.status, 200);
}
